package main

import (
	"context"
	"errors"
)

// runTokenize is not written yet; its owner replaces this file.
func runTokenize(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
