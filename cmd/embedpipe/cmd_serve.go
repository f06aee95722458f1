package main

import (
	"context"
	"errors"
)

// runServe is not written yet; its owner replaces this file.
func runServe(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
