package safetensors

import "errors"

// The sentinel errors below are wrapped, with the file and tensor they
// concern, by every error this package returns; test them with errors.Is.
var (
	// ErrHeader reports a malformed or inconsistent safetensors header.
	ErrHeader = errors.New("safetensors: invalid header")
	// ErrIndex reports a malformed model.safetensors.index.json or a shard
	// that disagrees with it.
	ErrIndex = errors.New("safetensors: invalid shard index")
	// ErrNoCheckpoint reports a directory holding neither model.safetensors
	// nor model.safetensors.index.json.
	ErrNoCheckpoint = errors.New("safetensors: no checkpoint found")
	// ErrTensorNotFound reports a tensor name the checkpoint does not hold.
	ErrTensorNotFound = errors.New("safetensors: tensor not found")
	// ErrShape reports a tensor whose shape differs from the one the caller
	// expects, or a destination slice of the wrong length.
	ErrShape = errors.New("safetensors: shape mismatch")
	// ErrDType reports an unknown dtype in a header, or a known dtype that
	// cannot be converted to float32.
	ErrDType = errors.New("safetensors: unsupported dtype")
	// ErrClosed reports use of a Checkpoint after Close.
	ErrClosed = errors.New("safetensors: checkpoint is closed")
	// ErrIO reports a failure to read checkpoint bytes, including a mapped
	// file that was truncated while it was open.
	ErrIO = errors.New("safetensors: read failed")
)
