package schemas_test

import (
	"errors"
	"fmt"

	"github.com/embedpipe/embedpipe/schemas"
)

// DecodeJob rejects unknown versions and invalid jobs with a reason that
// names the field.
func ExampleDecodeJob() {
	_, err := schemas.DecodeJob([]byte(`{"schema":"embedpipe.job/v2","id":"j"}`))
	fmt.Println(errors.Is(err, schemas.ErrUnknownVersion), err)
	_, err = schemas.DecodeJob([]byte(`{"schema":"embedpipe.job/v1","id":"j","inputs":[{"path":"/d/a.parquet"}],"column":"text","output":{"dir":"/o"},"model":{},"options":{"precision":"int3"}}`))
	fmt.Println(errors.Is(err, schemas.ErrInvalid), err)
	j, err := schemas.DecodeJob([]byte(`{"schema":"embedpipe.job/v1","id":"j","inputs":[{"path":"/d/a.parquet"}],"column":"text","output":{"dir":"/o"},"model":{}}`))
	fmt.Println(j.ID, schemas.FormatOf(j.Inputs[0]), err)
	// Output:
	// true schemas: unknown message schema or version: "embedpipe.job/v2" (want "embedpipe.job/v1")
	// true schemas: invalid message: job: options.precision "int3" (want float32, float16, int8, uint8, binary or ubinary)
	// j parquet <nil>
}
