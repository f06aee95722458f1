package sink

import "errors"

// Sentinel errors of package sink.
var (
	// ErrColumn reports a batch without the column a sink needs, or with
	// one of another type.
	ErrColumn = errors.New("sink: bad output column")
)
