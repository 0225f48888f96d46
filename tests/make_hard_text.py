"""Documents that stress a tokenizer's normalizer and pre-tokenizer, separated by '%' lines (kd import text's
--doc-sep): decomposed accents (NFC), contractions in upper case, long digit runs, CR LF, tabs, Unicode spaces
and separators, emoji with joiners and modifiers, CJK, Arabic, Hebrew, Devanagari, astral letters, long runs.
usage: make_hard_text.py OUT"""
import sys

DOCS = [
    "Cafe\u0301 re\u0301sume\u0301 na\u0308ive \u1100\u1161\u11a8 jamo; A\u030a ohm \u2126 angstrom \u212b",
    "I'M HERE, YOU'LL see; she'S fine. THEY'RE 'd 've 'll 're's don't",
    "numbers 1234567 12 3 4567890123 \u0661\u0662\u0663 \u00bd \u2163 x2y3 3.14159 1,000,000",
    "tabs\tand\t\ttabs, CRLF\r\nlines\r\n\r\nend  \n   \n\n\n   spaces    before",
    "nbsp\u00a0here ideographic\u3000space line\u2028sep para\u2029sep nel\u0085x zwsp\u200bx",
    "emoji \U0001F600\U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469\u200d\U0001F467 flags \U0001F1EF\U0001F1F5",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002\u4e2d\u6587\u53e5\u5b50\uff0c\ud55c\uad6d\uc5b4 "
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0939\u093f\u0928\u094d\u0926\u0940",
    "punct!!! ??? ... --- ((( ))) \"\"\" ''' `code` $100 #tag @user a+b=c <html> {json: [1,2]}",
    "   leading spaces and trailing spaces   ",
    "\n\nnewlines first",
    "mixed\u00e9\u0301 Stra\u00dfe STRASSE \u0130stanbul \u0131 \ufb01ligature \u00c5ngstr\u00f6m",
    "a" * 300 + " " + "\u00e9" * 100 + " " + "1" * 50,
    "x \U00010400\U00010428 deseret \U0001D400 math bold",
]

with open(sys.argv[1], "w", encoding="utf-8", newline="") as f:
    f.write("\n%\n".join(DOCS) + "\n")
