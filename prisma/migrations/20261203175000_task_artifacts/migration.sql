-- AlterTable
ALTER TABLE "ModelVersion" ADD COLUMN     "taskArtifacts" JSONB;

