//go:build !unix

package fileio

import "os"

// lockTemp does nothing where flock is not available.
func lockTemp(path string) (*os.File, error) { return nil, nil }

// tryLockTemp never claims a temporary where flock is not available: without
// a lock a live writer's file cannot be told from a dead one's, so stale
// temporaries are left in place.
func tryLockTemp(path string) (*os.File, bool, error) { return nil, false, nil }
