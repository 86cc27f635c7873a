# Turns a text file into a C++ source defining `const char SYMBOL[]` with its
# contents (a raw string literal), so a binary carries it with no file to
# install. Usage: cmake -DINPUT=in -DOUTPUT=out.cc -DSYMBOL=kName -P embed_text.cmake
file(READ "${INPUT}" content)
set(delimiter "unipool_embed")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by store/embed_text.cmake; do not edit.\n"
  "namespace unipool {\n"
  "extern const char ${SYMBOL}[];\n"
  "const char ${SYMBOL}[] = R\"${delimiter}(${content})${delimiter}\";\n"
  "}  // namespace unipool\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
