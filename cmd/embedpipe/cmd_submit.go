package main

import (
	"context"
	"errors"
)

// runSubmit is not written yet; its owner replaces this file.
func runSubmit(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
