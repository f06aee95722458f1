package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/embedpipe/embedpipe/internal/refs"
)

var (
	fuzzOnce       sync.Once
	fuzzTokenizers []*Tokenizer
)

// fuzzSet returns the inline test tokenizers and, when the shared material
// is there, those of the reference models, so fuzzing covers every stage.
func fuzzSet(t testing.TB) []*Tokenizer {
	fuzzOnce.Do(func() {
		fuzzTokenizers = []*Tokenizer{mustParse(t, testWordPieceJSON), mustParse(t, testBPEJSON)}
		if d := refs.SharedDir(); d != "" {
			for _, name := range []string{"tiny-bert", "tiny-mpnet", "tiny-modernbert", "tiny-qwen3", "tiny-xlmr"} {
				if tk, err := Load(d + "/models/" + name); err == nil {
					fuzzTokenizers = append(fuzzTokenizers, tk)
				}
			}
		}
	})
	return fuzzTokenizers
}

// checkEncode checks the invariants of EncodeTo on text: ids in range,
// the caller's prefix kept, and truncation equal to cutting the full
// sequence (the early stop must not change the ids).
func checkEncode(t *testing.T, tk *Tokenizer, text string) {
	full := tk.encodeSequence(&scratch{}, text, -1)
	for _, id := range full {
		if id < 0 || int(id) >= tk.VocabSize() {
			t.Fatalf("%s: id %d outside [0, %d) for %q", tk.Kind(), id, tk.VocabSize(), text)
		}
	}
	added := 0
	if tk.post != nil {
		added = tk.post.Added()
	}
	for _, maxLen := range []int{0, 1, 3, 8, 33} {
		got, trunc := tk.EncodeTo([]int32{-7}, text, maxLen)
		if got[0] != -7 {
			t.Fatalf("prefix overwritten")
		}
		seq := full
		if limit := max(maxLen-added, 0); maxLen > 0 && len(seq) > limit {
			seq = seq[:limit]
		}
		want := append([]int32{-7}, seq...)
		if tk.post != nil {
			want, _ = tk.post.Process([]int32{-7}, nil, seq)
		}
		if !slices.Equal(got, want) || trunc != (len(seq) < len(full)) {
			t.Fatalf("%s maxLen %d on %q: got %v (truncated %v), want %v (of %d)", tk.Kind(), maxLen, text, got, trunc, want, len(full))
		}
		if maxLen > 0 && len(got)-1 > max(maxLen, added) {
			t.Fatalf("%s maxLen %d: %d ids", tk.Kind(), maxLen, len(got)-1)
		}
	}
	// ContentOffsets, where it traces the text, gives the same ids, each
	// with a range of the text, in order, the first starting a word.
	ids, offs, word, ok := tk.ContentOffsets(text)
	if !ok {
		return
	}
	if !slices.Equal(ids, full) || len(offs) != len(ids) || len(word) != len(ids) || len(ids) > 0 && !word[0] {
		t.Fatalf("%s ContentOffsets(%q): %v %v %v, want ids %v", tk.Kind(), text, ids, offs, word, full)
	}
	for i, o := range offs {
		if o.Start < 0 || o.Stop > len(text) || o.Start > o.Stop || i > 0 && o.Start < offs[i-1].Start {
			t.Fatalf("%s ContentOffsets(%q): token %d at %v after %v", tk.Kind(), text, i, o, offs[max(i-1, 0)])
		}
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", " ", "Hello, world!", "don't  stop\n\n", "[CLS]x[SEP]", "<|endoftext|>hi", "<s></s><pad>",
		"Héllo wörld 中文 ½ 🎉👍🏽", "\x00\xff\xfe\u200b\u0301", strings.Repeat("a", 300), "İstanbul ΣΑΣ", "<mask> FOO xfoo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, tk := range fuzzSet(t) {
			checkEncode(t, tk, text)
		}
	})
}

func FuzzGPT2Split(f *testing.F) {
	for _, s := range []string{"I'm  here\n\nok ", "\t\tx   ", "a'b'llc 's", "\xff 1 ½"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		for i := 0; i < len(s); {
			n := gpt2Match(s, i)
			if n <= 0 || i+n > len(s) {
				t.Fatalf("match of %d bytes at %d in %q", n, i, s)
			}
			if utf8.ValidString(s) && !utf8.ValidString(s[i:i+n]) {
				t.Fatalf("piece %q cuts a character", s[i:i+n])
			}
			b.WriteString(s[i : i+n])
			i += n
		}
		if b.String() != s {
			t.Fatalf("pieces do not rebuild %q", s)
		}
	})
}

// FuzzLoad feeds mutated tokenizer.json files to the loader: it must
// return an error or a tokenizer that encodes without panicking and with
// ids inside its vocabulary.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(testWordPieceJSON))
	f.Add([]byte(testBPEJSON))
	f.Add([]byte(`{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["▁a", -1], ["b", -2]]},
		"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
		"normalizer": {"type": "Sequence", "normalizers": [{"type": "Replace", "pattern": {"String": "  "}, "content": " "}]}}`))
	f.Add([]byte(strings.Replace(testBPEJSON, `"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`,
		`"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|\\p{L}+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
			{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}, {"type": "Digits", "individual_digits": true}, {"type": "Punctuation"}]},
		"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Strip"}, {"type": "Prepend", "prepend": "x"}]}`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := parseTokenizerJSON(data)
		if err != nil {
			return
		}
		for _, s := range []string{"", "hello world", "hello<mask> FOO [SEP] ab", "Ġh é 中 <|endoftext|>", "\xff▁a b"} {
			checkEncode(t, tk, s)
		}
	})
}

// FuzzLoadVocabTxt feeds mutated vocab.txt and tokenizer_config.json files
// to the fallback loader: an error or a working tokenizer, never a panic.
func FuzzLoadVocabTxt(f *testing.F) {
	f.Add([]byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\nworld\n"), []byte(`{"do_lower_case": true, "pad_token": "[PAD]"}`))
	f.Add([]byte("<pad>\r\n<unk>\r\n<s>\r\n</s>\r\na\r\n"), []byte(`{"do_lower_case": false, "strip_accents": true, "cls_token": {"content": "<s>"}, "sep_token": "</s>", "unk_token": "<unk>",
		"added_tokens_decoder": {"5": {"content": "<new>", "special": true, "lstrip": true}}}`))
	f.Fuzz(func(t *testing.T, vocab, config []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), vocab, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), config, 0o644); err != nil {
			t.Fatal(err)
		}
		tk, err := Load(dir)
		if err != nil {
			return
		}
		for _, s := range []string{"", "Hello worlds", "<s> <new> [SEP] é"} {
			checkEncode(t, tk, s)
		}
	})
}
