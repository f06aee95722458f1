package schemas

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, every
// error must wrap one of the sentinel errors, and whatever decodes must
// validate and survive a re-encode/decode round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validJob))
	f.Add([]byte(`{"schema":"embedpipe.task/v1","job_id":"j","index":0,"tasks":1,"input":{"path":"a.parquet"},"row_group_lo":0,"row_group_hi":1,"rows":3,"column":"text","output":{"dir":"o"},"part":"part-00000.parquet","model":{"dir":"m"}}`))
	f.Add([]byte(`{"schema":"embedpipe.result/v1","job_id":"j","index":0,"part":"p","rows":1,"tokens":2,"seconds":0.5}`))
	f.Add([]byte(`{"schema":"embedpipe.status/v1","job_id":"j","state":"running","tasks":2,"done":1,"failed":0,"rows":1,"total_rows":2,"tokens":3}`))
	f.Add([]byte(`{"texts":["a"]}`))
	f.Add([]byte(`{"schema":"embedpipe.job/v9"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"schema":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sentinel := func(err error) {
			if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownVersion) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
		}
		if j, err := DecodeJob(data); err == nil {
			b, _ := json.Marshal(j)
			if _, err := DecodeJob(b); err != nil {
				t.Fatalf("job round trip: %v", err)
			}
		} else {
			sentinel(err)
		}
		if tk, err := DecodeTask(data); err == nil {
			b, _ := json.Marshal(tk)
			if _, err := DecodeTask(b); err != nil {
				t.Fatalf("task round trip: %v", err)
			}
		} else {
			sentinel(err)
		}
		_, err := DecodeResult(data)
		sentinel(err)
		_, err = DecodeStatus(data)
		sentinel(err)
		_, err = DecodeEmbedRequest(data, 100)
		sentinel(err)
		_, err = DecodeRecord(data)
		sentinel(err)
	})
}
