package workers_test

import (
	"fmt"

	"github.com/embedpipe/embedpipe/workers"
)

// Redact hides the secrets of a NATS URL before it is logged.
func ExampleRedact() {
	fmt.Println(workers.Redact("nats://alice:s3cret@nats-1:4222,nats://nats-2:4222"))
	// Output: nats://alice:xxxxx@nats-1:4222,nats://nats-2:4222
}

// Part names are deterministic, so a redelivered task overwrites its part.
func ExamplePartName() {
	fmt.Println(workers.PartName(7))
	// Output: part-00007.parquet
}
