// Package hub fetches model repositories from the Hugging Face Hub into the
// cache layout that the huggingface_hub Python library uses, so that both
// tools share one cache.
//
// A model is named "org/name" with an optional "@revision" (a branch, a tag
// or a commit hash; "main" by default). Client.Snapshot resolves the
// revision to a commit with /api/models/{id}/revision/{rev}, downloads the
// files an embedding model needs (and no others: no pytorch_model.bin, ONNX
// or TensorFlow weights) with /{id}/resolve/{commit}/{file}, and returns the
// snapshot directory, which package encoder loads like any model directory.
//
// The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else
// ~/.cache/huggingface/hub, laid out as
//
//	models--org--name/blobs/{etag}              file contents, named by their etag
//	models--org--name/refs/{revision}           the commit a branch or tag pointed to
//	models--org--name/snapshots/{commit}/{file} relative symbolic links to the blobs
//
// Downloads go to blobs/{etag}.incomplete, resume from its length with a
// Range request, are checked against the etag (sha256 for LFS files, the git
// blob sha1 for the others) and are renamed into place only when they match;
// a file that does not match is deleted and reported with ErrChecksum.
// HF_ENDPOINT points at a mirror, HF_TOKEN (or the token file
// $HF_HOME/token) authenticates for gated and private repositories, and
// HF_HUB_OFFLINE=1 resolves from the cache alone.
package hub
