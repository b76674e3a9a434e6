// html_to_text (text/html_text.hpp): script/style/comments dropped, entities and character
// references decoded, block elements separate words and inline ones do not, broken markup
// recovered, a <meta charset> not obeyed (the input is UTF-8 already).
#include <gtest/gtest.h>

#include "focus/text/html_text.hpp"

using namespace focus;

TEST(HtmlText, DropsScriptStyleAndComments) {
  EXPECT_EQ(html_to_text("<html><head><title>T</title><style>b{x:y}</style>"
                         "<script>var a = '<p>no</p>';</script></head>"
                         "<body>one<!-- secret --> two<noscript>js off</noscript></body></html>"),
            "T one two");
}

TEST(HtmlText, DecodesEntitiesAndReferences) {
  EXPECT_EQ(html_to_text("<p>caf&eacute; &amp; cr&#232;me &#x263A; &lt;tag&gt;&nbsp;x</p>"),
            "caf\xC3\xA9 & cr\xC3\xA8me \xE2\x98\xBA <tag> x");
}

TEST(HtmlText, BlocksSeparateWordsInlineElementsDoNot) {
  EXPECT_EQ(html_to_text("<p>a</p><p>b</p><div>c<br>d</div><b>bo</b>ld <td>e</td><td>f</td>"),
            "a b c d bold e f");
}

TEST(HtmlText, RecoversFromBrokenMarkup) {
  EXPECT_EQ(html_to_text("<p>unclosed <b>bold <i>italic"), "unclosed bold italic");
  EXPECT_EQ(html_to_text("<table><tr><td>cell</table></div></p>after"), "cell after");
  EXPECT_EQ(html_to_text(""), "");
  EXPECT_EQ(html_to_text("if a < b and c > d"), "if a < b and c > d");
}

TEST(HtmlText, InputIsUtf8WhateverTheMetaSays) {
  EXPECT_EQ(html_to_text("<html><head><meta http-equiv=\"Content-Type\" "
                         "content=\"text/html; charset=windows-1252\"></head>"
                         "<body>\xC3\xA9t\xC3\xA9</body></html>"),
            "\xC3\xA9t\xC3\xA9");
}
