// Command embedpipe embeds datasets with transformer encoder models in pure
// Go. Run "embedpipe help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the CLI. run parses args itself so that each
// command owns its flags.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = []command{
	{"embed", "embed a text column of a file or dataset", runEmbed},
	{"tokenize", "write the token ids a model sees for each text", runTokenize},
	{"inspect", "describe a model directory", runInspect},
	{"bench", "measure encoder and end-to-end throughput", runBench},
	{"worker", "pull embedding tasks from NATS JetStream", runWorker},
	{"submit", "submit an embedding job to NATS JetStream", runSubmit},
	{"status", "show the progress of a submitted job", runStatus},
	{"serve", "run an embedding service (embedded NATS by default)", runServe},
	{"stream", "embed records from one JetStream stream into another", runStream},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: embedpipe <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun \"embedpipe <command> -h\" for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "help" || name == "-h" || name == "--help" {
		usage()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(ctx, os.Args[2:])
		if err == nil {
			return
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "embedpipe %s: %v\n", name, err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "embedpipe: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
