package embed

import "errors"

// Sentinel errors of package embed; returned errors wrap one of them with %w
// and say which option or input is at fault.
var (
	// ErrOptions reports an option that is malformed or that the model
	// cannot honour.
	ErrOptions = errors.New("invalid embedding options")
	// ErrRanges reports int8/uint8 calibration ranges that do not fit the
	// output.
	ErrRanges = errors.New("invalid calibration ranges")
	// ErrBuffer reports a caller's buffer too small for the output.
	ErrBuffer = errors.New("output buffer too small")
)
