package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the CLI. run parses args itself so that each
// command owns its flags (with newFlags and cmdFlags.parse, see cli.go).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = []command{
	{"embed", "embed a text column of a file or dataset", runEmbed},
	{"score", "score (query, document) pairs of a file with a cross-encoder", runScore},
	{"tokenize", "write the token ids a model sees for each text", runTokenize},
	{"inspect", "describe a model directory", runInspect},
	{"explain", "draw a model's attention and context for a few texts", runExplain},
	{"bench", "measure encoder and end-to-end throughput", runBench},
	{"worker", "pull embedding tasks from NATS JetStream", runWorker},
	{"submit", "submit an embedding job to NATS JetStream", runSubmit},
	{"status", "show the progress of a submitted job", runStatus},
	{"cancel", "cancel a submitted job (tasks stop at their next batch)", runCancel},
	{"serve", "run an embedding service (embedded NATS by default)", runServe},
	{"stream", "embed records from one JetStream stream into another", runStream},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: embedpipe <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "version", "print the version, commit, Go version and kernel family")
	fmt.Fprintf(w, "  %-9s %s\n", "help", "print this list, or a command's help (embedpipe help embed)")
	fmt.Fprintf(w, "\nRun \"embedpipe <command> -h\" for a command's flags and examples.\n")
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	// The first SIGINT or SIGTERM cancels ctx: a run stops reading,
	// checkpoints what is in flight and exits 130. A second one exits at
	// once; the checkpoint stays valid, since its parts are renamed into
	// place only when complete.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "embedpipe: second interrupt: exiting now; the checkpointed work is kept, rerun the same command to resume")
		os.Exit(130)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// run runs the command line args (without the program name) and returns
// the exit status: 0 on success and for help, 2 for a usage error, the
// error's ExitCode where it has one (130 after an interrupt), else 1.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	helpOutput = stdout
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		// "embedpipe help embed" is "embedpipe embed -h".
		name, args = args[1], []string{args[1], "-h"}
	case "version", "-version", "--version":
		fmt.Fprint(stdout, versionText())
		return 0
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:])
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "embedpipe %s: %v\n", name, err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	if s := suggest(name, commandNames()); s != "" {
		fmt.Fprintf(stderr, "embedpipe: unknown command %q (did you mean %q?)\n\n", name, s)
	} else {
		fmt.Fprintf(stderr, "embedpipe: unknown command %q\n\n", name)
	}
	usage(stderr)
	return 2
}
