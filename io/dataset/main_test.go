package dataset

import (
	"os"
	"testing"

	"github.com/embedpipe/embedpipe/internal/fuzzflags"
)

// TestMain bounds the fuzzer's minimization (see fuzzflags): Arrow's
// readers made FuzzParquet and FuzzArrowIPC report 0 execs/s without it.
func TestMain(m *testing.M) { os.Exit(fuzzflags.Run(m)) }
