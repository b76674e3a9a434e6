// Labelled texts from a Weka ARFF file whose attributes are one string (the text) and one nominal
// class, in either order (Debian weka's Reuters-21578 Corn / Grain examples: `@attribute Text
// string`, `@attribute class-att {0,1}`). Data lines hold one value per attribute, comma
// separated; a string value is quoted with ' or " and may use the escapes \n \t \r \' \" \\.
// '%' lines are comments, blank lines are skipped. Limits: no sparse ({...}) rows, no missing
// values ('?'), no numeric or date attributes.
// Errors: FormatError naming the file and the line for a header or data line that does not
// follow this shape (an unclosed quote, a class value the header does not list, a wrong number of
// values, a file with no @data). IOError when the file cannot be read.
//
//   const LabelledFile f = read_arff_texts("ReutersCorn-train.arff");  // labels "0" / "1"
#pragma once
#include <string>
#include <string_view>

#include "focus/text/labelled.hpp"

namespace focus {

LabelledFile read_arff_texts(const std::string& path);
// The same from text in memory; `name` stands for the file in messages.
LabelledFile parse_arff_texts(std::string_view content, const std::string& name);

}  // namespace focus
