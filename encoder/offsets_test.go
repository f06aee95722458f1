package encoder_test

import (
	"slices"
	"testing"
)

// TestTokenOffsets checks that with a prompt the offsets point into the
// text, not the prompt plus text, the prompt's tokens and the special
// tokens have none, and the ids are TokenizeTo's, truncation included.
func TestTokenOffsets(t *testing.T) {
	m := load(t, "../testdata/tiny-bert")
	const prompt, text = "query: ", "Héllo, world"
	for _, maxLen := range []int{0, 5} {
		ids, offs, known := m.TokenOffsets(text, prompt, maxLen)
		want, _ := m.TokenizeTo(nil, text, prompt, maxLen)
		if !slices.Equal(ids, want) || offs == nil {
			t.Fatalf("max length %d: ids %v (offsets %v), want %v", maxLen, ids, offs, want)
		}
		promptIDs, _ := m.TokenizeTo(nil, "", prompt, 0)
		nPrompt := len(promptIDs) - 1 // [CLS] and the prompt's tokens
		for i := range ids {
			if inText := i >= nPrompt && i < len(ids)-1; known[i] != inText {
				t.Fatalf("max length %d: token %d %q known %v", maxLen, i, m.IDToToken(ids[i]), known[i])
			}
		}
		if o := offs[nPrompt]; o.Start != 0 || o.Stop != len("Héllo") {
			t.Fatalf("max length %d: first text token at %v, want [0, %d)", maxLen, o, len("Héllo"))
		}
	}
}
