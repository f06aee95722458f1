package dataset

import (
	"flag"
	"os"
	"testing"
)

// fuzzMinimizeDefault replaces the go command's default minimization budget
// (60 s per input) when -fuzzminimizetime is not given. Arrow's readers
// cover code from goroutines and pools, so the coverage of one input varies
// between runs: the fuzzer then fails to reproduce each new input's coverage
// while minimizing it and spends the whole 60 s on it, and the run reports 0
// execs/s for most of its time. A budget counted in executions keeps
// minimization short and the fuzzing rate real.
const fuzzMinimizeDefault = "200x"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", fuzzMinimizeDefault); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
