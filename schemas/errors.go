package schemas

import "errors"

// ErrUnknownVersion reports a message whose "schema" field names a type or
// version this build does not understand.
var ErrUnknownVersion = errors.New("schemas: unknown message schema or version")

// ErrInvalid reports a message that is not valid JSON, has unknown fields or
// has a field with an invalid value.
var ErrInvalid = errors.New("schemas: invalid message")

// ErrTooLarge reports a message longer than MaxMessageBytes.
var ErrTooLarge = errors.New("schemas: message too large")
