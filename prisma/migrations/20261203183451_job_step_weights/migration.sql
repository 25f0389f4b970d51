-- CreateTable
CREATE TABLE "JobStepWeights" (
    "jobId" UUID NOT NULL,
    "step" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "weights" JSONB NOT NULL,

    CONSTRAINT "JobStepWeights_pkey" PRIMARY KEY ("jobId","step")
);

-- AddForeignKey
ALTER TABLE "JobStepWeights" ADD CONSTRAINT "JobStepWeights_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

