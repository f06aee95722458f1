package tokenizer

import (
	"os"
	"testing"

	"github.com/embedpipe/embedpipe/internal/fuzzflags"
)

// TestMain bounds the fuzzer's minimization (see fuzzflags).
func TestMain(m *testing.M) { os.Exit(fuzzflags.Run(m)) }
