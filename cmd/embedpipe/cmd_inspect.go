package main

import (
	"context"
	"errors"
)

// runInspect is not written yet; its owner replaces this file.
func runInspect(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
