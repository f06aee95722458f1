package tokenizer

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestLongestFirst checks the lengths of Hugging Face's longest_first
// strategy, including the odd budget split where the longer sequence (the
// second on a tie) keeps the extra id.
func TestLongestFirst(t *testing.T) {
	cases := []struct{ na, nb, budget, wa, wb int }{
		{3, 4, 10, 3, 4},          // fits
		{3, 20, 10, 3, 7},         // only the longer is cut
		{20, 3, 10, 7, 3},         // same, swapped
		{600, 550, 509, 255, 254}, // both cut, the longer keeps the odd id
		{550, 600, 509, 254, 255},
		{600, 600, 509, 254, 255}, // tie: the second keeps it
		{300, 600, 509, 254, 255},
		{237, 600, 509, 237, 272},
		{0, 600, 509, 0, 509},
		{5, 5, 0, 0, 0},
	}
	for _, c := range cases {
		a, b := longestFirst(c.na, c.nb, c.budget)
		if a != c.wa || b != c.wb {
			t.Errorf("longestFirst(%d, %d, %d) = %d, %d, want %d, %d", c.na, c.nb, c.budget, a, b, c.wa, c.wb)
		}
	}
}

// TestPairTemplates checks the pair layouts of BertProcessing,
// RobertaProcessing and TemplateProcessing, and that a template without a
// pair layout is refused.
func TestPairTemplates(t *testing.T) {
	a, b := []int32{7, 8}, []int32{9}
	bert, _ := parseClsSep([]byte(`{"cls": ["[CLS]", 101], "sep": ["[SEP]", 102]}`), false)
	ids, types, ok := bert.(pairProcessor).ProcessPair(nil, nil, a, b)
	if !ok || !slices.Equal(ids, []int32{101, 7, 8, 102, 9, 102}) || !slices.Equal(types, []int32{0, 0, 0, 0, 1, 1}) {
		t.Errorf("BertProcessing pair: %v %v %v", ids, types, ok)
	}
	rob, _ := parseClsSep([]byte(`{"cls": ["<s>", 0], "sep": ["</s>", 2]}`), true)
	ids, types, _ = rob.(pairProcessor).ProcessPair(nil, nil, a, b)
	if !slices.Equal(ids, []int32{0, 7, 8, 2, 2, 9, 2}) || slices.Max(types) != 0 {
		t.Errorf("RobertaProcessing pair: %v %v", ids, types)
	}
	tp, err := parseTemplate([]byte(`{"single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
		"pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[CLS]", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
		"special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [5], "tokens": ["[CLS]"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ids, types, _ = tp.(pairProcessor).ProcessPair(nil, nil, a, b)
	if !slices.Equal(ids, []int32{7, 8, 5, 9}) || !slices.Equal(types, []int32{0, 0, 1, 1}) || tp.(pairProcessor).AddedPair() != 1 {
		t.Errorf("TemplateProcessing pair: %v %v", ids, types)
	}
	single, err := parseTemplate([]byte(`{"single": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	tok := &Tokenizer{model: mustWordLevel(t), post: single}
	if _, _, _, err := tok.EncodePairTo(nil, nil, "a", "b", 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("template without pair: %v, want ErrUnsupported", err)
	}
	if _, err := parseTemplate([]byte(`{"single": [{"Sequence": {"id": "A", "type_id": 0}}], "pair": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}`)); !errors.Is(err, ErrFormat) {
		t.Errorf("pair template with one sequence: %v, want ErrFormat", err)
	}
}

func mustWordLevel(t *testing.T) Model {
	t.Helper()
	return &wordLevel{vocabTable: vocabTable{vocab: map[string]int32{"a": 0, "b": 1}, idToTok: []string{"a", "b"}}, unk: -1}
}

// FuzzEncodePair checks EncodePairTo on every fuzzed tokenizer: no panic,
// ids and types of one length, the total within maxLen when the pair
// template has room, and each text's ids a prefix of its own encoding.
func FuzzEncodePair(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"Hello, world!", "a b c"}, {"[CLS]x[SEP]", "<s></s>"},
		{"Héllo wörld 中文", "🎉👍🏽 " + strings.Repeat("word ", 80)}} {
		f.Add(s[0], s[1], 16)
	}
	f.Fuzz(func(t *testing.T, a, b string, maxLen int) {
		maxLen %= 600
		for _, tk := range fuzzSet(t) {
			ids, types, _, err := tk.EncodePairTo(nil, nil, a, b, maxLen)
			if err != nil {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("%s: %v", tk.Kind(), err)
				}
				continue
			}
			if len(ids) != len(types) {
				t.Fatalf("%s: %d ids, %d types", tk.Kind(), len(ids), len(types))
			}
			added := 0
			if pp, ok := tk.post.(pairProcessor); ok {
				added = pp.AddedPair()
			}
			if maxLen > added && len(ids) > maxLen {
				t.Fatalf("%s: maxLen %d gave %d ids", tk.Kind(), maxLen, len(ids))
			}
		}
	})
}
