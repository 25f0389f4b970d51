-- CreateEnum
CREATE TYPE "FederatedRunStatus" AS ENUM ('RUNNING', 'SUCCEEDED', 'FAILED', 'STOPPED');

-- CreateEnum
CREATE TYPE "FederatedParticipantKind" AS ENUM ('SILO', 'EXTERNAL');

-- CreateEnum
CREATE TYPE "FederatedRoundStatus" AS ENUM ('OPEN', 'AGGREGATING', 'COMPLETED', 'FAILED');

-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'FEDERATED_LOCAL';

-- CreateTable
CREATE TABLE "ModelVersionParent" (
    "childId" UUID NOT NULL,
    "parentId" UUID NOT NULL,
    "relation" TEXT NOT NULL,

    CONSTRAINT "ModelVersionParent_pkey" PRIMARY KEY ("childId","parentId")
);

-- CreateTable
CREATE TABLE "FederatedRun" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "modelId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "status" "FederatedRunStatus" NOT NULL DEFAULT 'RUNNING',
    "config" JSONB NOT NULL,
    "round" INTEGER NOT NULL DEFAULT 0,
    "globalVersionId" UUID,
    "serverStateKey" TEXT,
    "error" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "FederatedRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "FederatedParticipant" (
    "id" UUID NOT NULL,
    "runId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "FederatedParticipantKind" NOT NULL,
    "datasetId" UUID,
    "tokenHash" TEXT,
    "tokenPrefix" TEXT,
    "headsKey" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "FederatedParticipant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "FederatedRound" (
    "runId" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "status" "FederatedRoundStatus" NOT NULL DEFAULT 'OPEN',
    "participantIds" UUID[],
    "baseVersionId" UUID NOT NULL,
    "deadline" TIMESTAMP(3) NOT NULL,
    "versionId" UUID,
    "metrics" JSONB,
    "aggregation" JSONB,
    "error" JSONB,
    "openedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closedAt" TIMESTAMP(3),

    CONSTRAINT "FederatedRound_pkey" PRIMARY KEY ("runId","number")
);

-- CreateTable
CREATE TABLE "FederatedUpdate" (
    "runId" UUID NOT NULL,
    "round" INTEGER NOT NULL,
    "participantId" UUID NOT NULL,
    "objectKey" TEXT NOT NULL,
    "sampleCount" INTEGER NOT NULL,
    "norm" DOUBLE PRECISION,
    "clipped" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "FederatedUpdate_pkey" PRIMARY KEY ("runId","round","participantId")
);

-- CreateIndex
CREATE INDEX "ModelVersionParent_parentId_idx" ON "ModelVersionParent"("parentId");

-- CreateIndex
CREATE INDEX "FederatedRun_projectId_createdAt_idx" ON "FederatedRun"("projectId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "FederatedParticipant_tokenHash_key" ON "FederatedParticipant"("tokenHash");

-- CreateIndex
CREATE UNIQUE INDEX "FederatedParticipant_runId_name_key" ON "FederatedParticipant"("runId", "name");

-- AddForeignKey
ALTER TABLE "ModelVersionParent" ADD CONSTRAINT "ModelVersionParent_childId_fkey" FOREIGN KEY ("childId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelVersionParent" ADD CONSTRAINT "ModelVersionParent_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FederatedRun" ADD CONSTRAINT "FederatedRun_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FederatedRun" ADD CONSTRAINT "FederatedRun_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FederatedParticipant" ADD CONSTRAINT "FederatedParticipant_runId_fkey" FOREIGN KEY ("runId") REFERENCES "FederatedRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FederatedRound" ADD CONSTRAINT "FederatedRound_runId_fkey" FOREIGN KEY ("runId") REFERENCES "FederatedRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FederatedUpdate" ADD CONSTRAINT "FederatedUpdate_runId_round_fkey" FOREIGN KEY ("runId", "round") REFERENCES "FederatedRound"("runId", "number") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FederatedUpdate" ADD CONSTRAINT "FederatedUpdate_participantId_fkey" FOREIGN KEY ("participantId") REFERENCES "FederatedParticipant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

