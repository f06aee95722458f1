// Command embedpipe embeds datasets with transformer encoder models in pure
// Go. Run "embedpipe help" for the list of commands.
//
// Each command lives in a file of its own (cmd_embed.go, cmd_serve.go, …);
// flags shared by several commands (NATS connection, Postgres output, hub
// models) are registered by one helper each, so that a flag is parsed,
// defaulted and validated once.
package main
