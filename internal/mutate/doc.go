// Package mutate damages valid files the way the hardening tests do: byte
// flips, deletions, insertions and boundary integers written at random
// places. It is for tests only.
package mutate
