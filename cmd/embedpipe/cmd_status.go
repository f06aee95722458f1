package main

import (
	"context"
	"errors"
)

// runStatus is not written yet; its owner replaces this file.
func runStatus(ctx context.Context, args []string) error {
	return errors.New("not implemented yet")
}
