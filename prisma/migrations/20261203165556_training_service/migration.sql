-- CreateEnum
CREATE TYPE "TaskKind" AS ENUM ('REGRESSION', 'BINARY', 'MULTICLASS', 'MULTILABEL');

-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "backend" TEXT,
ADD COLUMN     "checkpointEpoch" INTEGER,
ADD COLUMN     "checkpointKey" TEXT,
ADD COLUMN     "modelId" UUID;

-- CreateTable
CREATE TABLE "Task" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "datasetId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "TaskKind" NOT NULL,
    "targets" TEXT[],
    "lossWeight" DOUBLE PRECISION NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Task_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Model" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Model_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ModelVersion" (
    "id" UUID NOT NULL,
    "projectId" UUID NOT NULL,
    "modelId" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "jobId" UUID,
    "artifactKey" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "sizeBytes" BIGINT NOT NULL,
    "metrics" JSONB NOT NULL,
    "lineage" JSONB NOT NULL,
    "backend" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ModelVersion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ModelAlias" (
    "modelId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "versionId" UUID NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ModelAlias_pkey" PRIMARY KEY ("modelId","name")
);

-- CreateTable
CREATE TABLE "JobMetric" (
    "jobId" UUID NOT NULL,
    "epoch" INTEGER NOT NULL,
    "task" TEXT NOT NULL,
    "split" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "value" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "JobMetric_pkey" PRIMARY KEY ("jobId","epoch","task","split","name")
);

-- CreateTable
CREATE TABLE "_ModelToTask" (
    "A" UUID NOT NULL,
    "B" UUID NOT NULL,

    CONSTRAINT "_ModelToTask_AB_pkey" PRIMARY KEY ("A","B")
);

-- CreateIndex
CREATE INDEX "Task_projectId_createdAt_idx" ON "Task"("projectId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Task_projectId_name_key" ON "Task"("projectId", "name");

-- CreateIndex
CREATE INDEX "Model_projectId_createdAt_idx" ON "Model"("projectId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "ModelVersion_jobId_key" ON "ModelVersion"("jobId");

-- CreateIndex
CREATE INDEX "ModelVersion_projectId_createdAt_idx" ON "ModelVersion"("projectId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "ModelVersion_modelId_number_key" ON "ModelVersion"("modelId", "number");

-- CreateIndex
CREATE INDEX "_ModelToTask_B_index" ON "_ModelToTask"("B");

-- AddForeignKey
ALTER TABLE "Task" ADD CONSTRAINT "Task_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Task" ADD CONSTRAINT "Task_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Model" ADD CONSTRAINT "Model_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelVersion" ADD CONSTRAINT "ModelVersion_projectId_fkey" FOREIGN KEY ("projectId") REFERENCES "Project"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelVersion" ADD CONSTRAINT "ModelVersion_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelAlias" ADD CONSTRAINT "ModelAlias_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelAlias" ADD CONSTRAINT "ModelAlias_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobMetric" ADD CONSTRAINT "JobMetric_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_ModelToTask" ADD CONSTRAINT "_ModelToTask_A_fkey" FOREIGN KEY ("A") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_ModelToTask" ADD CONSTRAINT "_ModelToTask_B_fkey" FOREIGN KEY ("B") REFERENCES "Task"("id") ON DELETE CASCADE ON UPDATE CASCADE;

