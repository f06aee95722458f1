// Package hubtest runs a local HTTP server that speaks the Hugging Face
// Hub's download protocol, for tests of package hub and of the commands that
// accept hub model ids. It serves model directories from disk:
//
//	GET  /api/models/{org}/{name}/revision/{rev}    {"id", "sha", "siblings": [{"rfilename"}]}
//	HEAD /{org}/{name}/resolve/{rev}/{file}         X-Repo-Commit, ETag (git blob sha1) or, for
//	GET  /{org}/{name}/resolve/{rev}/{file}         LFS files, X-Linked-Etag (sha256), X-Linked-Size
//	                                                and a 302 to a second "storage" server
//
// Gated repositories answer 401 without the right Bearer token. Faults can
// be injected: a download cut after some bytes, a file served with wrong
// content under its true etag.
package hubtest
