package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestContentOffsets traces the text tokens of every corpus row for the
// WordPiece (tiny-bert) and byte-level BPE (tiny-modernbert, tiny-qwen3)
// tokenizers: the ids are EncodeTo's without the special tokens; on
// WordPiece the offsets are EncodeOffsets' (equal to Hugging Face's on
// bert-base-uncased) and a word starts at every token that is not a "##"
// piece; on BPE every token's byte-level spelling is exactly the bytes of
// its range, the ranges tile the text, and a word starts where GPT-2's
// pattern starts one.
func TestContentOffsets(t *testing.T) {
	shared := refs.Shared(t)
	type row struct{ Text *string }
	rows := refs.ReadJSONL[row](t, "corpus.public.jsonl")
	for _, name := range []string{"tiny-bert", "tiny-modernbert", "tiny-qwen3"} {
		t.Run(name, func(t *testing.T) {
			tk, err := Load(filepath.Join(shared, "models", name))
			if err != nil {
				t.Fatal(err)
			}
			_, isWP := tk.model.(*wordPiece)
			n := 0
			for i, r := range rows {
				if r.Text == nil {
					continue
				}
				text := *r.Text
				ids, offs, word, ok := tk.ContentOffsets(text)
				if !ok {
					t.Fatalf("row %d %q: no offsets", i, clip(text, 60))
				}
				full, _ := tk.EncodeTo(nil, text, 0)
				if added := tk.post.Added(); len(full)-added != len(ids) || len(offs) != len(ids) || len(word) != len(ids) {
					t.Fatalf("row %d: %d ids, %d offsets, %d word flags; EncodeTo gives %d with %d special", i, len(ids), len(offs), len(word), len(full), added)
				}
				if len(ids) > 0 && !word[0] {
					t.Fatalf("row %d: the first token does not start a word", i)
				}
				if isWP {
					_, eo, known := tk.EncodeOffsets(text, 0)
					k := 0
					for j := range eo {
						if !known[j] {
							continue
						}
						if eo[j] != offs[k] {
							t.Fatalf("row %d token %d: offset %v, EncodeOffsets %v", i, k, offs[k], eo[j])
						}
						k++
					}
					for j, id := range ids {
						cont := strings.HasPrefix(tk.IDToToken(id), "##")
						if word[j] == cont {
							t.Fatalf("row %d token %d %q: word start %v", i, j, tk.IDToToken(id), word[j])
						}
					}
				} else {
					added := map[int32]bool{}
					for _, a := range tk.rawAdded.toks {
						added[a.ID] = true
					}
					pos, prev, seg := 0, Offset{-1, -1}, 0
					for j, id := range ids {
						o := offs[j]
						// Bytes of one character split across tokens all
						// get the character's range, as Hugging Face's
						// alignments do.
						spelt := byteLevelString(text[max(o.Start, 0):min(max(o.Stop, 0), len(text))])
						whole := o.Start == pos && spelt == tk.IDToToken(id)
						split := o.Start >= prev.Start && o.Start <= pos && o.Stop >= pos && strings.Contains(spelt, tk.IDToToken(id))
						if o.Stop <= o.Start || !whole && !split {
							t.Fatalf("row %d token %d %q: offset %v after byte %d", i, j, tk.IDToToken(id), o, pos)
						}
						pos, prev = o.Stop, o
						// Added tokens cut the text into segments, each
						// pre-tokenized on its own.
						if added[id] {
							seg = o.Stop
						}
						want := added[id] || j > 0 && added[ids[j-1]] || gpt2Start(text[seg:], o.Start-seg) && (j == 0 || offs[j-1].Start != o.Start)
						if word[j] != want {
							t.Fatalf("row %d token %d %q at %v: word start %v; prev %v %q; text %q", i, j, tk.IDToToken(id), o, word[j], offs[j-1], tk.IDToToken(ids[j-1]), text[max(0, o.Start-10):min(len(text), o.Stop+10)])
						}
					}
					if pos != len(text) {
						t.Fatalf("row %d: tokens cover %d of %d bytes", i, pos, len(text))
					}
				}
				n++
			}
			t.Logf("%s: %d rows traced", name, n)
		})
	}
	// A tokenizer whose stages are not traced gives no offsets.
	xlmr, err := Load(filepath.Join(shared, "models", "tiny-xlmr"))
	if err != nil {
		t.Fatal(err)
	}
	if ids, offs, _, ok := xlmr.ContentOffsets("hello world"); ok || ids != nil || offs != nil {
		t.Fatalf("Unigram: %v %v %v, want no offsets", ids, offs, ok)
	}
}

// gpt2Start reports whether GPT-2's pattern starts a match at byte b of s.
func gpt2Start(s string, b int) bool {
	for i := 0; i < len(s); i += gpt2Match(s, i) {
		if i == b {
			return true
		}
		if i > b {
			return false
		}
	}
	return false
}
