#!/bin/sh
# Chorus runs Prisma's schema engine as wasm (engine: 'js' in
# prisma.config.ts) and its client without a query engine library, so no
# native engine is ever downloaded. Prisma's CLI still insists that these
# paths exist; this file stands in for them and refuses to run.
echo "Prisma asked for a native engine; Chorus uses the wasm engines only." >&2
exit 1
