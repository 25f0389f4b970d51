-- CreateTable. UNLOGGED, edited by hand as Prisma cannot say it: rate-limit
-- counts are rewritten on every request and need no crash safety, so they
-- skip the write-ahead log. A crash empties the table, which only resets
-- the windows.
CREATE UNLOGGED TABLE "RateLimitWindow" (
    "key" TEXT NOT NULL,
    "hits" INTEGER NOT NULL,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "RateLimitWindow_pkey" PRIMARY KEY ("key")
);
