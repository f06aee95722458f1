package parquetio

import (
	"sync"

	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// pooledZstd replaces Arrow's zstd codec for compression. Arrow's builds a
// new encoder, with fresh history buffers and match tables, for every page
// it compresses at an explicit level: on wide rows that garbage was more
// than half of all a run allocated, and it set the pace of the collector.
// This codec keeps encoders in a pool per level and reuses them; the bytes
// it writes are ordinary zstd frames. Decompression is Arrow's.
type pooledZstd struct {
	compress.Codec // Arrow's zstd codec: Decode, NewReader, NewWriter…
}

var zstdPools sync.Map // zstd.EncoderLevel → *sync.Pool of *zstd.Encoder

func init() {
	if c, err := compress.GetCodec(compress.Codecs.Zstd); err == nil {
		compress.RegisterCodec(compress.Codecs.Zstd, pooledZstd{c})
	}
}

func (z pooledZstd) Encode(dst, src []byte) []byte {
	return z.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

func (z pooledZstd) EncodeLevel(dst, src []byte, level int) []byte {
	lvl := zstd.SpeedDefault
	if level != compress.DefaultCompressionLevel {
		lvl = zstd.EncoderLevelFromZstd(level)
	}
	p, _ := zstdPools.LoadOrStore(lvl, &sync.Pool{})
	pool := p.(*sync.Pool)
	enc, _ := pool.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1))
		if err != nil { // only for invalid options, which these are not
			return z.Codec.EncodeLevel(dst, src, level)
		}
	}
	out := enc.EncodeAll(src, dst[:0])
	pool.Put(enc)
	return out
}
