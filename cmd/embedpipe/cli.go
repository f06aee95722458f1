package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/embedpipe/embedpipe/internal/buildinfo"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// This file is the CLI's one framework for flags and help, shared by every
// command: a command builds its flags with newFlags, parses them with
// cmdFlags.parse, and reports a bad invocation with usageErrorf. That gives
// every command the same help format (on stdout, exit 0), flags accepted
// after positional arguments, "did you mean" for mistyped flags, and exit
// status 2 for usage errors.

// helpOutput is where -h and "embedpipe help" write; run sets it to its
// stdout so that tests can capture help.
var helpOutput io.Writer = os.Stdout

// summaries maps each command's name to its one-line summary for its
// help. It is filled from commands in init, since the commands refer to
// the help through their run functions.
var summaries = map[string]string{}

func init() {
	for _, c := range commands {
		summaries[c.name] = c.summary
	}
}

// cmdFlags is the flag set of one command together with what its help
// prints besides the flags: the synopsis after "embedpipe NAME" and at
// least one example command line.
type cmdFlags struct {
	*flag.FlagSet
	synopsis string
	examples []string
}

// inputHelp is the usage text of the --input flag of the commands that read
// datasets through pipeline.Run (embed, score).
const inputHelp = "input file, directory or glob (required): .parquet, .arrow/.feather, .arrows, .jsonl, .csv, .jsonl.gz, .csv.gz"

// newFlags returns the flag set of command name. synopsis is the usage line
// after "embedpipe name" (such as "--model DIR --input FILE [flags]");
// examples are complete command lines shown under Examples.
func newFlags(name, synopsis string, examples ...string) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// parse reports errors itself, with suggestions; the flag package's
	// own message and usage dump would duplicate them on stderr.
	fs.SetOutput(io.Discard)
	c := &cmdFlags{FlagSet: fs, synopsis: synopsis, examples: examples}
	fs.Usage = func() {}
	return c
}

// parse parses args, accepting flags before, between and after positional
// arguments ("status JOB --json"); "--" ends the flags. -h or --help prints
// the help to helpOutput and returns flag.ErrHelp, which main turns into
// exit status 0. An unknown flag or a bad value returns a usage error that
// names the closest defined flag when there is one.
func (c *cmdFlags) parse(args []string) error {
	var pos []string
	for {
		err := c.FlagSet.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.printHelp(helpOutput)
			return err
		}
		if err != nil {
			return c.flagError(err)
		}
		rest := c.FlagSet.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments where Arg and NArg find them: parse
	// "--" followed by them, which the flag package takes as all
	// positional.
	return c.FlagSet.Parse(append([]string{"--"}, pos...))
}

// given reports whether the flag called name was set on the command line.
func (c *cmdFlags) given(name string) bool {
	set := false
	c.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// noArgs returns a usage error when positional arguments were given to a
// command that takes none.
func (c *cmdFlags) noArgs() error {
	if c.NArg() > 0 {
		return c.usageErrorf("unexpected arguments: %s", strings.Join(c.Args(), " "))
	}
	return nil
}

// flagError turns an error of flag.FlagSet.Parse into a usage error in
// the CLI's own words, with a suggestion for a mistyped flag name.
func (c *cmdFlags) flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimPrefix(name, "-")
		var names []string
		c.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := suggest(name, names); s != "" {
			return c.usageErrorf("unknown flag --%s (did you mean --%s?)", name, s)
		}
		return c.usageErrorf("unknown flag --%s", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return c.usageErrorf("flag --%s needs a value", strings.TrimPrefix(name, "-"))
	}
	return c.usageErrorf("%s", msg)
}

// usageErrorf returns a usage error of this command: main prints it with a
// pointer to the command's help and exits with status 2.
func (c *cmdFlags) usageErrorf(format string, a ...any) error {
	return &usageError{cmd: c.Name(), msg: fmt.Sprintf(format, a...)}
}

// usageError is a command line that cannot run as given.
type usageError struct{ cmd, msg string }

func (e *usageError) Error() string {
	return fmt.Sprintf("%s\nRun \"embedpipe %s -h\" for its flags and examples.", e.msg, e.cmd)
}

// ExitCode makes a usage error exit with status 2, as flag.ExitOnError does.
func (e *usageError) ExitCode() int { return 2 }

// printHelp writes the help of the command in the format every command
// shares: usage line, summary, flags, examples.
func (c *cmdFlags) printHelp(w io.Writer) {
	name := c.Name()
	fmt.Fprintf(w, "usage: embedpipe %s %s\n", name, c.synopsis)
	if s := summaries[name]; s != "" {
		fmt.Fprintf(w, "\n%s%s.\n", strings.ToUpper(s[:1]), s[1:])
	}
	fmt.Fprintf(w, "\nFlags:\n")
	c.VisitAll(func(f *flag.Flag) {
		typ, text := flag.UnquoteUsage(f)
		if typ != "" {
			typ = " " + typ
		}
		fmt.Fprintf(w, "  --%s%s\n        %s", f.Name, typ, strings.ReplaceAll(text, "\n", "\n        "))
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			if typ == " string" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "  -h, --help\n        print this help\n")
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// suggest returns the candidate closest to name when it is close enough to
// be a likely typo (an edit distance of 1 for short names, 2 otherwise,
// transpositions counting as one edit) or when name is a prefix of exactly
// one candidate; otherwise "".
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	limit := 2
	if len(name) <= 3 {
		limit = 1
	}
	var prefixed []string
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
		if len(name) >= 2 && strings.HasPrefix(c, name) {
			prefixed = append(prefixed, c)
		}
	}
	if bestD <= limit {
		return best
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// editDistance is the optimal-string-alignment distance of a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// versionText describes this build: the module version, the commit it was
// built from, the Go version and the kernel family the encoder dispatches
// to on this CPU.
func versionText() string {
	version, commit := buildinfo.Version()
	return fmt.Sprintf("embedpipe %s\ncommit   %s\ngo       %s %s/%s\nkernels  %s\n",
		version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, kernels.Family())
}

// commandNames lists the names "embedpipe help" and the command
// suggestions know, the built-in help and version included.
func commandNames() []string {
	names := []string{"help", "version"}
	for _, c := range commands {
		names = append(names, c.name)
	}
	return slices.Compact(names)
}
