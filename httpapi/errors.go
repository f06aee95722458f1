package httpapi

import "errors"

// ErrConfig reports a Config that cannot serve: no model or batcher, or a
// limit out of range.
var ErrConfig = errors.New("httpapi: invalid configuration")
