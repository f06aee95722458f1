package main

import (
	"context"
	"errors"
)

// runWorker is not written yet; its owner replaces this file.
func runWorker(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
