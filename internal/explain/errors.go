package explain

import "errors"

var (
	// ErrInput reports texts or options that cannot be explained: no text,
	// an empty text, a layer or head the model does not have.
	ErrInput = errors.New("explain: bad input")
	// ErrTooLong reports a text over the token limit of the pictures.
	ErrTooLong = errors.New("explain: text too long")
)
