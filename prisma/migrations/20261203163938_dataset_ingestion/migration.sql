-- AlterTable
ALTER TABLE "UploadSession" ADD COLUMN     "intent" JSONB;

-- AlterTable
ALTER TABLE "Dataset" ADD COLUMN     "format" TEXT,
ADD COLUMN     "report" JSONB,
ADD COLUMN     "rowCount" INTEGER,
ADD COLUMN     "sample" JSONB,
ADD COLUMN     "schema" JSONB,
ADD COLUMN     "shardCount" INTEGER,
ADD COLUMN     "shardPrefix" TEXT,
ADD COLUMN     "split" JSONB NOT NULL DEFAULT '{"ratios":{"train":0.8,"validation":0.1,"test":0.1},"seed":0}';

-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "datasetIds" UUID[];

-- CreateIndex
CREATE INDEX "Dataset_projectId_name_idx" ON "Dataset"("projectId", "name");

