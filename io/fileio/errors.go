package fileio

import "errors"

// Sentinel errors returned (wrapped with the file, row group and row) by the
// format packages. Test with errors.Is.
var (
	// ErrUnsupportedFormat means the file name has no extension embedpipe
	// knows how to read or write.
	ErrUnsupportedFormat = errors.New("unsupported file format")
	// ErrCorrupt means the file could not be decoded: a truncated file, a bad
	// footer, a page that fails to decompress, a line that is not JSON.
	ErrCorrupt = errors.New("corrupt input file")
	// ErrMissingColumn means a column named by the user is not in the file.
	ErrMissingColumn = errors.New("missing column")
	// ErrColumnType means a column has a type that cannot be used for its role
	// (for example a text column holding integers).
	ErrColumnType = errors.New("unsupported column type")
	// ErrRowGroupRange means a requested row-group range lies outside the file.
	ErrRowGroupRange = errors.New("row group range out of bounds")
	// ErrSchemaMismatch means a record given to a Writer does not have the
	// schema the Writer was created with.
	ErrSchemaMismatch = errors.New("schema mismatch")
)
