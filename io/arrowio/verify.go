package arrowio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Why a verifier: Arrow's IPC reader trusts the lengths in the flatbuffer
// metadata. A vector length that lies (a key-value list said to hold 2^31
// entries in a file of 8 KB) makes it allocate tens of GiB before it touches
// a byte, and the Go runtime dies of it — not a panic a caller can recover.
// The verifier walks the parts of the metadata the reader allocates from and
// checks every offset and length against the bytes that hold them, and every
// block and body against the file size, before the reader sees them.

// errBadMetadata is the cause wrapped by every verifier error.
var errBadMetadata = errors.New("invalid IPC metadata")

// maxNesting bounds the depth of nested fields the verifier accepts.
const maxNesting = 64

// fbuf is a flatbuffer under verification.
type fbuf struct{ b []byte }

func (v fbuf) errf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadMetadata}, a...)...)
}

func (v fbuf) u32(p int) (uint32, error) {
	if p < 0 || p+4 > len(v.b) {
		return 0, v.errf("offset %d outside %d-byte metadata", p, len(v.b))
	}
	return binary.LittleEndian.Uint32(v.b[p:]), nil
}

// table is a verified flatbuffer table: its position and vtable.
type table struct {
	v      fbuf
	pos    int
	vt     int
	vtSize int
}

// table verifies the table at pos.
func (v fbuf) table(pos int) (table, error) {
	so, err := v.u32(pos)
	if err != nil {
		return table{}, err
	}
	vt := pos - int(int32(so))
	if vt < 0 || vt+4 > len(v.b) {
		return table{}, v.errf("vtable at %d outside %d-byte metadata", vt, len(v.b))
	}
	vtSize := int(binary.LittleEndian.Uint16(v.b[vt:]))
	tSize := int(binary.LittleEndian.Uint16(v.b[vt+2:]))
	if vtSize < 4 || vtSize%2 != 0 || vt+vtSize > len(v.b) || pos+tSize > len(v.b) {
		return table{}, v.errf("table at %d has a vtable of %d bytes and a size of %d in %d-byte metadata", pos, vtSize, tSize, len(v.b))
	}
	return table{v: v, pos: pos, vt: vt, vtSize: vtSize}, nil
}

// field returns the position of field i, or -1 when it is absent.
func (t table) field(i int) int {
	o := 4 + 2*i
	if o+2 > t.vtSize {
		return -1
	}
	off := int(binary.LittleEndian.Uint16(t.v.b[t.vt+o:]))
	if off == 0 {
		return -1
	}
	return t.pos + off
}

// deref follows the offset stored at field i; -1 when the field is absent.
func (t table) deref(i int) (int, error) {
	p := t.field(i)
	if p < 0 {
		return -1, nil
	}
	u, err := t.v.u32(p)
	if err != nil {
		return 0, err
	}
	target := int64(p) + int64(u)
	if target > int64(len(t.v.b)) {
		return 0, t.v.errf("offset at %d points to %d, past %d-byte metadata", p, target, len(t.v.b))
	}
	return int(target), nil
}

// vector verifies the vector at field i of elements elem bytes wide and
// returns the position of its first element and its length (0, 0 when
// absent).
func (t table) vector(i, elem int) (start, n int, err error) {
	p, err := t.deref(i)
	if err != nil || p < 0 {
		return 0, 0, err
	}
	l, err := t.v.u32(p)
	if err != nil {
		return 0, 0, err
	}
	if int64(p)+4+int64(l)*int64(elem) > int64(len(t.v.b)) {
		return 0, 0, t.v.errf("vector at %d says %d elements of %d bytes, more than %d-byte metadata holds", p, l, elem, len(t.v.b))
	}
	return p + 4, int(l), nil
}

// subtable verifies the table at field i; ok is false when it is absent.
func (t table) subtable(i int) (table, bool, error) {
	p, err := t.deref(i)
	if err != nil || p < 0 {
		return table{}, false, err
	}
	st, err := t.v.table(p)
	return st, err == nil, err
}

// tables verifies the vector of tables at field i and calls fn on each.
func (t table) tables(i int, fn func(table) error) error {
	start, n, err := t.vector(i, 4)
	if err != nil {
		return err
	}
	for k := 0; k < n; k++ {
		p := start + 4*k
		u, _ := t.v.u32(p)
		target := int64(p) + int64(u)
		if target > int64(len(t.v.b)) {
			return t.v.errf("offset at %d points past the metadata", p)
		}
		st, err := t.v.table(int(target))
		if err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

func (t table) str(i int) error { _, _, err := t.vector(i, 1); return err }

func (t table) int64At(i int) int64 {
	p := t.field(i)
	if p < 0 || p+8 > len(t.v.b) {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(t.v.b[p:]))
}

func (t table) byteAt(i int) byte {
	p := t.field(i)
	if p < 0 || p >= len(t.v.b) {
		return 0
	}
	return t.v.b[p]
}

func keyValues(t table, i int) error {
	return t.tables(i, func(kv table) error {
		if err := kv.str(0); err != nil {
			return err
		}
		return kv.str(1)
	})
}

// Flatbuffer type ids of Arrow's Type union that hold offsets.
const (
	typeTimestamp = 10
	typeUnion     = 14
)

func verifyField(f table, depth int) error {
	if depth > maxNesting {
		return f.v.errf("fields nested deeper than %d", maxNesting)
	}
	if err := f.str(0); err != nil {
		return err
	}
	typ, ok, err := f.subtable(3)
	if err != nil {
		return err
	}
	if ok {
		switch f.byteAt(2) {
		case typeTimestamp:
			err = typ.str(1)
		case typeUnion:
			_, _, err = typ.vector(1, 4)
		}
		if err != nil {
			return err
		}
	}
	if dict, ok, err := f.subtable(4); err != nil {
		return err
	} else if ok {
		if _, _, err := dict.subtable(1); err != nil {
			return err
		}
	}
	if err := f.tables(5, func(c table) error { return verifyField(c, depth+1) }); err != nil {
		return err
	}
	return keyValues(f, 6)
}

func verifySchema(s table) error {
	if err := s.tables(1, func(f table) error { return verifyField(f, 0) }); err != nil {
		return err
	}
	if err := keyValues(s, 2); err != nil {
		return err
	}
	_, _, err := s.vector(3, 8)
	return err
}

func verifyRecordBatch(rb table, bodyLen int64) error {
	if rb.int64At(0) < 0 {
		return rb.v.errf("record batch of %d rows", rb.int64At(0))
	}
	if _, _, err := rb.vector(1, 16); err != nil {
		return err
	}
	start, n, err := rb.vector(2, 16)
	if err != nil {
		return err
	}
	for k := 0; k < n; k++ {
		p := start + 16*k
		off := int64(binary.LittleEndian.Uint64(rb.v.b[p:]))
		l := int64(binary.LittleEndian.Uint64(rb.v.b[p+8:]))
		if off < 0 || l < 0 || off > bodyLen || l > bodyLen-off {
			return rb.v.errf("buffer %d at [%d, +%d) outside a %d-byte body", k, off, l, bodyLen)
		}
	}
	if _, _, err := rb.subtable(3); err != nil {
		return err
	}
	_, _, err = rb.vector(4, 8)
	return err
}

// Flatbuffer type ids of Arrow's MessageHeader union.
const (
	headerSchema          = 1
	headerDictionaryBatch = 2
	headerRecordBatch     = 3
)

// verifyMessage verifies a Message flatbuffer whose body holds at most
// avail bytes, and returns the body length it declares.
func verifyMessage(meta []byte, avail int64) (int64, error) {
	v := fbuf{meta}
	root, err := v.u32(0)
	if err != nil {
		return 0, err
	}
	m, err := v.table(int(root))
	if err != nil {
		return 0, err
	}
	bodyLen := m.int64At(3)
	if bodyLen < 0 || bodyLen > avail {
		return 0, v.errf("message body of %d bytes where %d remain", bodyLen, avail)
	}
	if err := keyValues(m, 4); err != nil {
		return 0, err
	}
	h, ok, err := m.subtable(2)
	if err != nil || !ok {
		return bodyLen, err
	}
	switch m.byteAt(1) {
	case headerSchema:
		err = verifySchema(h)
	case headerRecordBatch:
		err = verifyRecordBatch(h, bodyLen)
	case headerDictionaryBatch:
		var rb table
		if rb, ok, err = h.subtable(1); err == nil && ok {
			err = verifyRecordBatch(rb, bodyLen)
		}
	}
	return bodyLen, err
}

// readPrefix reads a message's length prefix (with or without the
// continuation marker) and returns the metadata length and the prefix size.
func readPrefix(r io.Reader) (metaLen int64, prefix int, err error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, 0, err
	}
	prefix = 4
	if binary.LittleEndian.Uint32(b[:]) == 0xFFFFFFFF {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, 0, err
		}
		prefix = 8
	}
	return int64(int32(binary.LittleEndian.Uint32(b[:]))), prefix, nil
}

// VerifyStream checks the messages of an Arrow IPC stream of size bytes
// read from r, without reading their bodies into memory: every metadata
// length and body length must fit in what remains of the stream, and every
// flatbuffer must hold the vectors and strings it declares.
func VerifyStream(r io.Reader, size int64) error {
	var pos int64
	for k := 0; ; k++ {
		if pos == size {
			return nil // a stream may end without its end-of-stream marker
		}
		metaLen, prefix, err := readPrefix(r)
		if err != nil {
			return fmt.Errorf("%w: message %d at byte %d: truncated length prefix", errBadMetadata, k, pos)
		}
		pos += int64(prefix)
		if metaLen == 0 {
			return nil
		}
		if metaLen < 0 || metaLen > size-pos {
			return fmt.Errorf("%w: message %d at byte %d: metadata of %d bytes where %d remain", errBadMetadata, k, pos, metaLen, size-pos)
		}
		meta := make([]byte, metaLen)
		if _, err := io.ReadFull(r, meta); err != nil {
			return fmt.Errorf("%w: message %d: %v", errBadMetadata, k, err)
		}
		pos += metaLen
		bodyLen, err := verifyMessage(meta, size-pos)
		if err != nil {
			return fmt.Errorf("message %d at byte %d: %w", k, pos-metaLen, err)
		}
		if _, err := io.CopyN(io.Discard, r, bodyLen); err != nil {
			return fmt.Errorf("%w: message %d: body: %v", errBadMetadata, k, err)
		}
		pos += bodyLen
	}
}

// VerifyStreamBytes is VerifyStream over an in-memory stream.
func VerifyStreamBytes(b []byte) error {
	return VerifyStream(bytes.NewReader(b), int64(len(b)))
}

var fileMagic = []byte("ARROW1")

// VerifyFile checks an Arrow IPC file of size bytes: the footer and each
// block it lists must lie inside the file, and the footer and every message
// a block points to must pass the checks of VerifyStream.
func VerifyFile(r io.ReaderAt, size int64) error {
	const tail = 10 // int32 footer length + "ARROW1"
	if size < int64(len(fileMagic))+2+tail {
		return fmt.Errorf("%w: file of %d bytes is too short", errBadMetadata, size)
	}
	var t [tail]byte
	if _, err := r.ReadAt(t[:], size-tail); err != nil {
		return fmt.Errorf("%w: footer: %v", errBadMetadata, err)
	}
	if !bytes.Equal(t[4:], fileMagic) {
		return fmt.Errorf("%w: file does not end with ARROW1", errBadMetadata)
	}
	footLen := int64(int32(binary.LittleEndian.Uint32(t[:4])))
	if footLen <= 0 || footLen > size-tail-8 {
		return fmt.Errorf("%w: footer of %d bytes in a file of %d", errBadMetadata, footLen, size)
	}
	foot := make([]byte, footLen)
	if _, err := r.ReadAt(foot, size-tail-footLen); err != nil {
		return fmt.Errorf("%w: footer: %v", errBadMetadata, err)
	}
	v := fbuf{foot}
	root, err := v.u32(0)
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	ft, err := v.table(int(root))
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	if s, ok, err := ft.subtable(1); err != nil {
		return fmt.Errorf("footer: %w", err)
	} else if ok {
		if err := verifySchema(s); err != nil {
			return fmt.Errorf("footer schema: %w", err)
		}
	}
	if err := keyValues(ft, 4); err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	dataEnd := size - tail - footLen
	for _, fld := range []int{2, 3} {
		start, n, err := ft.vector(fld, 24)
		if err != nil {
			return fmt.Errorf("footer: %w", err)
		}
		for k := 0; k < n; k++ {
			p := start + 24*k
			off := int64(binary.LittleEndian.Uint64(foot[p:]))
			metaLen := int64(int32(binary.LittleEndian.Uint32(foot[p+8:])))
			bodyLen := int64(binary.LittleEndian.Uint64(foot[p+16:]))
			if off < 8 || metaLen <= 0 || bodyLen < 0 || off > dataEnd || metaLen > dataEnd-off || bodyLen > dataEnd-off-metaLen {
				return fmt.Errorf("%w: block %d (offset %d, metadata %d, body %d bytes) outside the %d bytes before the footer", errBadMetadata, k, off, metaLen, bodyLen, dataEnd)
			}
			msg := make([]byte, metaLen)
			if _, err := r.ReadAt(msg, off); err != nil {
				return fmt.Errorf("%w: block %d: %v", errBadMetadata, k, err)
			}
			br := bytes.NewReader(msg)
			ml, prefix, err := readPrefix(br)
			if err != nil || ml <= 0 || ml > metaLen-int64(prefix) {
				return fmt.Errorf("%w: block %d: message length %d in a %d-byte block", errBadMetadata, k, ml, metaLen)
			}
			if _, err := verifyMessage(msg[prefix:int64(prefix)+ml], bodyLen); err != nil {
				return fmt.Errorf("block %d: %w", k, err)
			}
		}
	}
	return nil
}
