package main

import (
	"context"
	"errors"
)

// runStream is not written yet; its owner replaces this file.
func runStream(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
