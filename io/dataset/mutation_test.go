package dataset

import (
	"math/rand"
	"os"
	"syscall"
	"testing"

	"github.com/embedpipe/embedpipe/internal/mutate"
)

// TestMutatedFiles reads 2,100 Parquet, Arrow file and Arrow stream files
// made from a rich seed by byte flips, deletions, insertions and boundary
// integers (fixed random seed): each must read cleanly or end in an error —
// a panic in a reader goroutine or a fatal out-of-memory from a lying length
// kills the test binary — and the whole run must stay under 1 GiB of RSS.
func TestMutatedFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("mutation run of 2,100 files (~10 s)")
	}
	r := rand.New(rand.NewSource(7))
	errs, ok := 0, 0
	for _, ext := range []string{".parquet", ".arrow", ".arrows"} {
		seed := seedFile(t, ext)
		for i := 0; i < 700; i++ {
			d := mutate.Bytes(r, seed)
			if _, err := drainBytes(t, ext, d); err != nil {
				errs++
			} else {
				ok++
			}
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	if ru.Maxrss > 1<<20 { // KiB
		t.Errorf("peak RSS %d MiB", ru.Maxrss/1024)
	}
	t.Logf("2100 mutated files: %d read cleanly, %d clear errors, 0 panics; peak RSS %d MiB", ok, errs, ru.Maxrss/1024)
}

// drainBytes writes data to a file with extension ext and drains it.
func drainBytes(t *testing.T, ext string, data []byte) (int64, error) {
	p := t.TempDir() + "/m" + ext
	if err := osWrite(p, data); err != nil {
		t.Fatal(err)
	}
	return drainFile(p)
}

func osWrite(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }
