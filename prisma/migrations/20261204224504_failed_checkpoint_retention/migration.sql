-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "checkpointsRemovedAt" TIMESTAMP(3);

