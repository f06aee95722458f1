package fuzzflags

import (
	"flag"
	"testing"
)

// MinimizeDefault replaces the go command's default minimization budget
// (60 s per input) when -fuzzminimizetime is not given.
//
// Why: the coverage of one input of these targets varies between runs
// (code reached from goroutines, pools and caches), so the fuzzer fails to
// reproduce each new input's coverage while minimizing it and spends the
// whole 60 s on it: the run reported 0 execs/s for most of its time. A
// budget counted in executions keeps minimization short and the rate real.
const MinimizeDefault = "200x"

// Run parses the flags, applies the defaults and runs the tests: call it
// from TestMain as os.Exit(fuzzflags.Run(m)).
func Run(m *testing.M) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", MinimizeDefault); err != nil {
			panic(err)
		}
	}
	return m.Run()
}
