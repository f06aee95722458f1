//go:build race

package encoder_test

// raceEnabled reports a -race build, under which sync.Pool drops items at
// random, so allocation counts mean nothing.
const raceEnabled = true
