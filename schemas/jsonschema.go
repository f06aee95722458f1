package schemas

import (
	"embed"
	"fmt"
)

// FS holds the JSON Schema documents of the version 1 messages, one file per
// message type (v1/<type>.schema.json) and v1/defs.schema.json with the
// shared definitions.
//
//go:embed v1/*.schema.json
var FS embed.FS

// JSONSchema returns the JSON Schema document of the message type name
// ("job", "task", "result", "status", "embed_request", "embed_reply",
// "sparse_embed_reply", "rerank_request", "rerank_reply", "record",
// "embedded", "task_progress", "manifest", "provenance" or "defs").
func JSONSchema(name string) ([]byte, error) {
	b, err := FS.ReadFile("v1/" + name + ".schema.json")
	if err != nil {
		return nil, fmt.Errorf("schemas: no JSON Schema named %q: %w", name, err)
	}
	return b, nil
}
