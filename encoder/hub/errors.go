package hub

import "errors"

// Sentinel errors of package hub. Returned errors wrap one of them with %w
// and name the repository, revision or file concerned.
var (
	// ErrRef reports a string that is not a model reference of the form
	// "org/name[@revision]".
	ErrRef = errors.New("hub: invalid model reference")
	// ErrUnauthorized reports a repository the hub refused without (or
	// with the given) token: a gated or private model, or one that does
	// not exist (the hub does not tell these apart for anonymous callers).
	ErrUnauthorized = errors.New("hub: unauthorized (gated or private repository: set HF_TOKEN)")
	// ErrNotFound reports a repository, revision or file the hub does not
	// have.
	ErrNotFound = errors.New("hub: not found")
	// ErrOffline reports that HF_HUB_OFFLINE is set and the cache does not
	// hold what was asked for.
	ErrOffline = errors.New("hub: offline and not in the cache")
	// ErrChecksum reports a downloaded file whose sha256 (or git blob sha1)
	// differs from the etag the hub gave for it.
	ErrChecksum = errors.New("hub: checksum mismatch")
	// ErrProtocol reports a hub answer this package cannot use: a missing
	// commit or etag header, a malformed revision document, an unexpected
	// status code.
	ErrProtocol = errors.New("hub: unexpected response")
	// ErrNoWeights reports a repository without safetensors weights (only
	// pytorch_model.bin or other formats the encoder cannot read).
	ErrNoWeights = errors.New("hub: repository has no safetensors weights")
)
