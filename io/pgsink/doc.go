// Package pgsink loads embeddings into PostgreSQL tables with the pgvector
// extension, exactly once across crashes.
//
// A Sink owns one connection. Each Write is one transaction: the batch's
// rows go by COPY (binary form) into a session-local staging table, are
// upserted from there into the target table by id, and the batch's progress
// row (run key, chunk sequence) is inserted into embedpipe_progress in the
// same transaction. A process killed at any moment therefore leaves every
// batch either wholly committed with its progress row or not at all, and a
// rerun that skips the chunks listed by Done (or simply writes them again:
// Write of a chunk already recorded changes nothing) ends with each input
// row in the table exactly once.
//
// Open creates the target table when it is missing (the id primary key, the
// pass-through columns mapped to PostgreSQL types, and the embedding as
// vector(dim), halfvec(dim) for float16, bit(dim) for binary precision or
// sparsevec(dim) for a sparse encoder's vectors) and refuses an existing
// table of another shape rather than altering it.
// Precisions pgvector cannot hold (int8, uint8) are refused with the reason.
// Finish builds the requested HNSW or IVFFlat index after the load, which is
// much faster than maintaining it row by row, and reports how long it took.
//
// The connection URL is any libpq URL or key/value string: the password may
// come from the URL, PGPASSWORD or ~/.pgpass, and sslmode is honoured (pgx
// parses them). Errors never include the password.
package pgsink
