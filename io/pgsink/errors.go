package pgsink

import "errors"

// Sentinel errors, wrapped with %w by the errors the package returns.
var (
	// ErrOptions reports an option that is missing, unknown or inconsistent.
	ErrOptions = errors.New("pgsink: bad options")
	// ErrConnect reports a server that cannot be reached or refuses the
	// credentials.
	ErrConnect = errors.New("pgsink: cannot connect")
	// ErrExtension reports a database without the pgvector extension.
	ErrExtension = errors.New("pgsink: pgvector extension missing")
	// ErrTableShape reports an existing table whose columns, types or
	// primary key differ from what the run writes.
	ErrTableShape = errors.New("pgsink: table has another shape")
	// ErrPrecision reports an embedding precision pgvector cannot hold.
	ErrPrecision = errors.New("pgsink: precision not supported by pgvector")
	// ErrDimension reports a dimension over pgvector's limits.
	ErrDimension = errors.New("pgsink: dimension over pgvector's limits")
	// ErrColumnType reports a pass-through column type with no PostgreSQL
	// mapping.
	ErrColumnType = errors.New("pgsink: column type not supported")
	// ErrRow reports a row that cannot be written (null or duplicate id,
	// wrong embedding width).
	ErrRow = errors.New("pgsink: bad row")
	// ErrWrite reports a failed load transaction.
	ErrWrite = errors.New("pgsink: write failed")
)
