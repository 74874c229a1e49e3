#!/usr/bin/python3
"""Generate src/colormap_data.c (rio-tiler's 211 named colormaps) and
tests/e2e/data/colormaps_expected.json (independent expectations for the unit
tests of the colormap and color_formula modules).

Run with Debian's interpreter; it needs python3-matplotlib and, for the
cmocean maps not transcribed below, gmt-common (or --gmt-cmocean-dir pointing
at an unpacked copy of its share/gmt/cpt/cmocean):

    apt-get install -y python3-matplotlib gmt-common
    /usr/bin/python3 scripts/gen_colormaps.py

How rio-tiler built its tables (rio_tiler/cmap_data/__init__.py): every
matplotlib colormap, plain and `_r`, sampled at numpy.linspace(0, 1, 256) and
converted with `(cmap(x) * 255).astype("uint8")`, i.e. truncated, not
rounded.  The `_r` tables are matplotlib's own reversed colormaps, which for
listed and function-defined maps are not the byte-reverse of the plain table,
so all 211 tables are emitted rather than reversed at lookup.

Sources:
  * 83 matplotlib colormaps: python3-matplotlib (Debian), same sampling.
  * 21 cmocean colormaps (Thyng et al. 2016, MIT licence): cmocean builds each
    map with LinearSegmentedColormap.from_list(rgb, N=256) from the RGB floats
    in cmocean/rgb/<name>-rgb.txt, and `<name>_r` from the reversed rows.
    There is no cmocean package in Debian.  When CMOCEAN_RGB below holds a
    map's floats they are sampled through matplotlib exactly like that.
    Otherwise the generator falls back to the 8-bit cmocean tables shipped by
    Debian's gmt-common package (/usr/share/gmt/cpt/cmocean/<name>.cpt,
    "cmocean-gmt version 2.0"), which are round(v * 255) where rio-tiler has
    floor(v * 255): such entries can be one unit above rio-tiler's, and the
    generated file lists them as approximate.  (cmocean's curl and delta
    tables have 512 rows in recent versions, so their exact transcription
    would need the 512-row files.)
  * cfastie, rplumbo, schwarzwald: the text tables rio-tiler 1.x shipped in
    rio_tiler/cmap/<name>.txt (cfastie: publiclab.org/notes/cfastie/
    08-26-2014/new-ndvi-colormap; rplumbo: cogeotiff/rio-tiler PR 90;
    schwarzwald: cpt-city wkp/schwarzwald/wiki-schwarzwald-cont).  rio-tiler
    1.x's loader dropped the first row (`[...][1:]`), leaving 256 RGB rows; the
    alpha is 255.  These three have no `_r` variant in rio-tiler.

The base names are the listing of rio_tiler/cmap_data in rio-tiler 6.x.
"""

import argparse
import json
import math
import os
import sys
import textwrap

import numpy as np

try:
    import matplotlib
    from matplotlib.colors import LinearSegmentedColormap
except ImportError:  # pragma: no cover
    sys.exit("gen_colormaps.py needs python3-matplotlib (apt-get install python3-matplotlib)")

BASE_NAMES = """
accent afmhot algae amp autumn balance binary blues bone brbg brg bugn bupu bwr cfastie cividis
cmrmap cool coolwarm copper cubehelix curl dark2 deep delta dense diff flag gist_earth gist_gray
gist_heat gist_ncar gist_rainbow gist_stern gist_yarg gnbu gnuplot gnuplot2 gray greens greys
haline hot hsv ice inferno jet magma matter nipy_spectral ocean oranges orrd oxy paired pastel1
pastel2 phase pink piyg plasma prgn prism pubu pubugn puor purd purples rain rainbow rdbu rdgy
rdpu rdylbu rdylgn reds rplumbo schwarzwald seismic set1 set2 set3 solar spectral speed spring
summer tab10 tab20 tab20b tab20c tarn tempo terrain thermal topo turbid turbo twilight
twilight_shifted viridis winter wistia ylgn ylgnbu ylorbr ylorrd
""".split()

CMOCEAN_NAMES = """
algae amp balance curl deep delta dense diff haline ice matter oxy phase rain solar speed tarn
tempo thermal topo turbid
""".split()

CUSTOM_NAMES = ["cfastie", "rplumbo", "schwarzwald"]

GMT_CMOCEAN_DIR = "/usr/share/gmt/cpt/cmocean"

# rio-tiler 1.x text tables, one "r g b" triple per entry (8 per line here).
CUSTOM_TABLES = {
    "cfastie": """
0 0 0  255 255 255  250 250 250  246 246 246  242 242 242  238 238 238  233 233 233  229 229 229
225 225 225  221 221 221  216 216 216  212 212 212  208 208 208  204 204 204  200 200 200  195 195 195
191 191 191  187 187 187  183 183 183  178 178 178  174 174 174  170 170 170  166 166 166  161 161 161
157 157 157  153 153 153  149 149 149  145 145 145  140 140 140  136 136 136  132 132 132  128 128 128
123 123 123  119 119 119  115 115 115  111 111 111  106 106 106  102 102 102  98 98 98  94 94 94
90 90 90  85 85 85  81 81 81  77 77 77  73 73 73  68 68 68  64 64 64  60 60 60
56 56 56  52 52 52  56 56 56  60 60 60  64 64 64  68 68 68  73 73 73  77 77 77
81 81 81  85 85 85  90 90 90  94 94 94  98 98 98  102 102 102  106 106 106  111 111 111
115 115 115  119 119 119  123 123 123  128 128 128  132 132 132  136 136 136  140 140 140  145 145 145
149 149 149  153 153 153  157 157 157  161 161 161  166 166 166  170 170 170  174 174 174  178 178 178
183 183 183  187 187 187  191 191 191  195 195 195  200 200 200  204 204 204  208 208 208  212 212 212
216 216 216  221 221 221  225 225 225  229 229 229  233 233 233  238 238 238  242 242 242  246 246 246
250 250 250  255 255 255  250 250 250  245 245 245  240 240 240  235 235 235  230 230 230  225 225 225
220 220 220  215 215 215  210 210 210  205 205 205  200 200 200  195 195 195  190 190 190  185 185 185
180 180 180  175 175 175  170 170 170  165 165 165  160 160 160  155 155 155  151 151 151  146 146 146
141 141 141  136 136 136  131 131 131  126 126 126  121 121 121  116 116 116  111 111 111  106 106 106
101 101 101  96 96 96  91 91 91  86 86 86  81 81 81  76 76 76  71 71 71  66 66 66
61 61 61  56 56 56  66 66 80  77 77 105  87 87 130  98 98 155  108 108 180  119 119 205
129 129 230  140 140 255  131 147 239  122 154 223  113 161 207  105 168 191  96 175 175  87 183 159
78 190 143  70 197 127  61 204 111  52 211 95  43 219 79  35 226 63  26 233 47  17 240 31
8 247 15  1 255 1  7 255 1  15 255 1  23 255 1  31 255 1  39 255 1  47 255 1
55 255 1  63 255 1  71 255 1  79 255 1  87 255 1  95 255 1  103 255 1  111 255 1
119 255 1  127 255 1  135 255 1  143 255 1  151 255 1  159 255 1  167 255 1  175 255 1
183 255 1  191 255 1  199 255 1  207 255 1  215 255 1  223 255 1  231 255 1  239 255 1
247 255 1  255 255 1  255 249 1  255 244 1  255 239 1  255 233 1  255 228 1  255 223 1
255 217 1  255 212 1  255 207 1  255 201 1  255 196 1  255 191 1  255 185 1  255 180 1
255 175 1  255 170 1  255 164 1  255 159 1  255 154 1  255 148 1  255 143 1  255 138 1
255 132 1  255 127 1  255 122 1  255 116 1  255 111 1  255 106 1  255 100 1  255 95 1
255 90 1  255 85 1  255 79 1  255 74 1  255 69 1  255 63 1  255 58 1  255 53 1
255 47 1  255 42 1  255 37 1  255 31 1  255 26 1  255 21 1  255 15 1  255 10 1
255 5 1  255 1 1  255 1 15  255 1 31  255 1 47  255 1 63  255 1 79  255 1 95
255 1 111  255 1 127  255 1 143  255 1 159  255 1 175  255 1 191  255 1 207  255 1 223
255 1 239
""",
    "rplumbo": """
0 0 0  0 0 0  1 1 1  1 1 1  2 2 2  3 3 3  3 3 3  4 4 4
5 5 5  5 5 5  6 6 6  7 7 7  7 7 7  8 8 8  9 9 9  9 9 9
10 10 10  11 11 11  11 11 11  12 12 12  13 13 13  13 13 13  14 14 14  15 15 15
15 15 15  16 16 16  17 17 17  17 17 17  18 18 18  19 19 19  19 19 19  20 20 20
21 21 21  21 21 21  22 22 22  23 23 23  23 23 23  24 24 24  25 25 25  25 25 25
26 26 26  27 27 27  27 27 27  28 28 28  29 29 29  29 29 29  30 30 30  31 31 31
31 31 31  32 32 32  33 33 33  33 33 33  34 34 34  35 35 35  35 35 35  36 36 36
37 37 37  37 37 37  38 38 38  39 39 39  39 39 39  40 40 40  41 41 41  41 41 41
42 42 42  43 43 43  43 43 43  44 44 44  45 45 45  45 45 45  46 46 46  47 47 47
47 47 47  48 48 48  49 49 49  49 49 49  50 50 50  51 51 51  51 51 51  52 52 52
53 53 53  53 53 53  54 54 54  55 55 55  55 55 55  56 56 56  57 57 57  57 57 57
58 58 58  59 59 59  59 59 59  60 60 60  61 61 61  61 61 61  62 62 62  63 63 63
63 63 63  64 64 64  65 65 65  65 65 65  66 66 66  67 67 67  67 67 67  68 68 68
69 69 69  69 69 69  70 70 70  71 71 71  71 71 71  72 72 72  73 73 73  73 73 73
74 74 74  75 75 75  75 75 75  76 76 76  77 77 77  77 77 77  78 78 78  79 79 79
79 79 79  80 80 80  81 81 81  81 81 81  82 82 82  83 83 83  83 83 83  84 84 84
85 85 85  85 85 85  74 1 0  84 3 0  94 5 0  105 7 0  115 10 0  125 12 0
135 16 0  145 19 0  156 23 0  166 28 0  176 32 0  186 37 0  196 43 0  207 48 0
217 54 0  227 61 0  237 67 0  247 74 0  255 81 0  255 85 0  255 89 0  255 94 0
255 98 0  255 102 0  255 106 0  255 111 0  255 115 0  255 119 0  255 123 0  255 128 0
255 132 0  255 136 0  255 140 0  255 145 0  255 149 0  255 153 0  255 157 0  255 162 0
255 166 0  255 170 0  255 174 0  255 179 0  255 183 0  255 187 0  255 191 0  255 196 0
255 200 0  255 204 0  255 208 0  255 213 0  255 217 0  255 221 0  255 225 0  255 230 0
255 234 0  255 238 0  255 242 0  255 247 0  255 251 0  255 255 0  248 252 0  241 249 0
234 247 0  228 244 0  221 241 0  214 238 0  208 235 0  202 233 0  195 230 0  189 227 0
183 224 0  177 221 0  171 219 0  165 216 0  160 213 0  154 210 0  149 207 0  143 205 0
138 202 0  133 199 0  127 196 0  122 193 0  117 190 0  113 188 0  108 185 0  103 182 0
99 179 0  94 176 0  90 174 0  85 171 0  81 168 0  77 165 0  73 162 0  69 160 0
65 157 0  62 154 0  58 151 0  54 148 0  51 146 0  48 143 0  44 140 0  41 137 0
38 134 0  35 132 0  32 129 0  29 126 0  27 123 0  24 120 0  22 118 0  19 115 0
17 112 0  15 109 0  12 106 0  10 104 0  8 101 0  7 98 0  5 95 0  3 92 0
1 90 0  0 87 0  0 84 1  0 81 3  0 78 4  0 75 5  0 73 6  0 70 7
0 67 8
""",
    "schwarzwald": """
0 0 0  174 239 213  174 239 212  175 240 211  176 242 208  176 242 205  176 242 202  176 242 199
177 242 196  177 242 193  176 243 190  176 244 186  177 245 184  178 246 181  180 246 179  181 246 178
186 247 178  189 247 178  192 247 178  195 247 178  198 248 178  201 248 178  204 249 178  210 250 177
214 250 177  217 250 178  221 250 178  224 251 178  231 252 178  235 252 178  238 252 179  242 252 179
245 252 179  247 252 179  250 252 178  248 249 172  243 247 167  238 244 162  232 242 156  226 240 151
213 235 140  205 231 134  198 228 128  191 225 123  184 222 118  177 219 113  170 216 108  154 211 98
147 208 94  140 205 89  132 202 85  125 199 82  110 194 74  102 191 70  94 188 66  86 185 62
77 182 57  69 179 53  62 176 50  49 171 44  44 168 43  39 165 42  35 163 42  30 160 43
24 154 46  21 151 48  18 148 49  16 145 51  14 142 52  12 140 54  9 137 56  7 132 60
9 131 62  12 130 63  18 130 63  24 130 63  40 132 61  46 134 61  52 136 60  58 138 60
64 140 59  70 141 59  76 142 59  87 146 56  93 147 55  99 148 54  105 149 53  110 150 52
120 154 50  124 155 49  128 156 48  132 158 47  137 160 46  142 161 44  147 162 43  156 164 41
161 165 40  166 166 39  171 168 37  176 170 36  187 173 34  192 175 32  197 176 30  202 176 29
207 177 28  213 178 26  218 179 24  228 180 20  233 181 17  238 182 14  242 182 11  246 182 8
248 176 4  246 171 3  244 166 2  241 160 2  238 155 2  235 149 2  232 144 2  226 132 2
223 127 2  220 122 2  218 116 2  216 111 2  211 102 2  209 97 2  206 92 2  203 88 2
200 84 2  192 74 2  189 70 2  186 66 2  183 62 2  180 58 2  177 54 2  174 49 2
169 42 2  166 39 2  163 36 2  160 33 2  157 30 2  151 23 2  149 21 2  146 18 1
144 16 1  141 14 1  138 11 1  135 8 0  130 5 0  128 5 0  125 4 0  123 6 1
122 8 2  119 13 2  119 15 2  118 16 2  118 17 3  117 18 4  117 19 4  117 20 4
117 21 4  117 21 4  116 22 4  116 23 4  116 24 5  114 26 6  114 28 6  114 29 6
113 30 6  112 31 7  112 32 7  111 33 8  110 35 8  110 35 8  110 36 8  110 37 8
109 38 9  108 40 10  108 40 10  108 40 10  108 41 10  108 42 10  108 43 10  107 44 11
106 44 12  106 45 12  106 46 12  106 47 13  107 48 14  110 52 18  112 54 20  113 57 23
115 59 25  116 62 28  117 64 30  118 66 32  121 70 37  123 72 40  125 74 43  127 76 47
128 79 50  131 85 56  133 87 60  135 90 63  137 93 66  138 96 69  139 98 73  140 101 76
144 106 84  146 108 87  147 111 90  149 113 93  150 116 96  152 122 104  154 126 108  156 129 112
157 132 116  158 135 120  159 138 125  160 141 130  163 147 139  165 151 143  166 154 147  166 157 151
167 160 156  170 167 164  171 169 168  172 172 171  173 173 173  174 174 174  176 176 176  178 178 178
181 181 181  183 183 183  184 184 184  186 186 186  188 188 188  192 192 192  194 194 194  196 196 196
198 198 198  200 200 200  202 202 202  204 204 204  208 206 208  210 208 210  212 210 212  214 212 214
216 214 216  218 216 218  220 218 220  221 219 221  223 221 223  225 223 225  227 225 227  229 227 229
233 231 233
""",
}

# cmocean's published float tables (matplotlib/cmocean, cmocean/rgb/
# <name>-rgb.txt), transcribed as millionths truncated to six decimals: 256
# rows of "r g b" each.  Every value was checked against the cmocean-gmt 8-bit
# table (round(v * 255) must match) and for being far enough from a multiple
# of 1/255 that the truncation cannot change floor(v * 255); cmocean_tables()
# repeats the second check.  Only the maps whose float tables could be read
# are here; see the module docstring for the others.
CMOCEAN_RGB = {
    "algae": """
842902 976912 814649  837989 973240 808843  833079 969582 803053  828170 965937 797280
823259 962307 791517  818349 958690 785772  813440 955087 780043  808528 951498 774326
803617 947922 768625  798706 944359 762941  793792 940811 757271  788877 937275 751616
783961 933753 745978  779044 930243 740355  774123 926747 734746  769200 923264 729155
764276 919793 723581  759347 916336 718021  754416 912891 712477  749482 909458 706950
744544 906038 701441  739601 902631 695945  734654 899236 690467  729704 895853 685007
724749 892482 679563  719787 889124 674135  714820 885778 668724  709849 882443 663332
704871 879120 657957  699885 875809 652596  694894 872510 647255  689895 869223 641931
684891 865946 636627  679876 862682 631338  674854 859429 626067  669823 856187 620814
664784 852957 615581  659736 849737 610366  654677 846529 605169  649608 843332 599990
644528 840146 594830  639437 836971 589689  634335 833806 584568  629222 830652 579467
624095 827509 574385  618953 824376 569322  613799 821255 564278  608630 818143 559256
603447 815042 554254  598249 811951 549273  593035 808871 544313  587804 805801 539374
582555 802740 534457  577287 799691 529561  572000 796651 524687  566694 793621 519835
561367 790601 515007  556018 787591 510201  550647 784591 505419  545254 781600 500662
539835 778619 495928  534392 775648 491220  528922 772686 486537  523425 769734 481880
517899 766791 477250  512343 763858 472647  506756 760934 468071  501137 758019 463525
495483 755113 459007  489795 752217 454520  484068 749330 450063  478301 746452 445638
472494 743583 441245  466644 740723 436886  460751 737871 432563  454811 735028 428277
448824 732194 424028  442781 729369 419817  436686 726552 415647  430535 723743 411519
424328 720943 407437  418053 718151 403398  411715 715367 399408  405312 712590 395470
398831 709822 391583  392277 707061 387753  385645 704307 383981  378926 701560 380271
372124 698819 376627  365225 696086 373051  358235 693357 369549  351140 690634 366125
343942 687915 362784  336637 685199 359531  329213 682488 356371  321674 679778 353311
314017 677068 350357  306237 674358 347516  298330 671645 344794  290300 668929 342199
282149 666205 339737  273882 663473 337415  265507 660729 335238  257033 657970 333211
248476 655193 331337  239852 652395 329617  231184 649572 328052  222495 646722 326636
213814 643841 325363  205167 640927 324226  196580 637978 323214  188080 634993 322315
179691 631972 321514  171433 628914 320800  163322 625820 320158  155373 622692 319576
147595 619530 319041  139998 616337 318544  132588 613113 318075  125367 609862 317624
118341 606585 317185  111512 603283 316750  104881 599959 316315  098452 596615 315877
092227 593251 315430  086209 589869 314969  080405 586471 314496  074819 583059 314004
069460 579632 313494  064336 576193 312964  059457 572742 312411  054836 569281 311835
050490 565810 311237  046427 562331 310612  042678 558843 309965  039233 555348 309289
036215 551846 308588  033671 548338 307862  031553 544824 307108  029841 541306 306327
028514 537783 305520  027545 534256 304688  026895 530726 303826  026551 527193 302938
026494 523657 302023  026705 520118 301082  027164 516577 300115  027851 513035 299121
028745 509491 298100  029826 505947 297053  031087 502401 295979  032513 498855 294880
034088 495309 293755  035801 491763 292604  037638 488216 291428  039586 484670 290227
041606 481125 289002  043643 477580 287751  045696 474037 286476  047754 470494 285177
049808 466953 283853  051851 463413 282506  053877 459874 281136  055880 456338 279742
057857 452803 278325  059798 449270 276885  061700 445739 275422  063565 442211 273936
065392 438685 272429  067179 435162 270899  068924 431640 269349  070628 428121 267777
072289 424605 266184  073896 421092 264569  075454 417582 262933  076968 414075 261277
078438 410571 259602  079864 407069 257907  081241 403570 256192  082561 400076 254456
083838 396584 252701  085072 393095 250928  086264 389610 249137  087397 386128 247326
088485 382650 245497  089531 379174 243650  090537 375702 241786  091485 372234 239903
092390 368769 238002  093256 365308 236086  094079 361849 234152  094846 358395 232201
095577 354944 230233  096272 351496 228251  096909 348053 226250  097509 344612 224234
098075 341174 222203  098588 337741 220155  099062 334311 218092  099504 330884 216016
099894 327461 213922  100247 324041 211815  100571 320623 209694  100838 317210 207556
101076 313800 205406  101279 310392 203241  101433 306989 201062  101560 303588 198869
101643 300190 196663  101690 296796 194443  101709 293403 192210  101676 290015 189963
101619 286628 187704  101521 283245 185431  101389 279865 183145  101228 276486 180848
101021 273111 178536  100792 269737 176214  100517 266367 173877  100217 262998 171529
099880 259632 169169  099510 256268 166796  099111 252905 164412  098673 249545 162015
098213 246186 159607  097707 242830 157186  097185 239473 154755  096616 236120 152310
096028 232766 149855  095399 229416 147387  094749 226064 144908  094059 222715 142417
093347 219365 139915  092598 216017 137401  091825 212669 134875  091017 209321 132337
090185 205973 129789  089317 202625 127228  088426 199276 124655  087500 195928 122071
086552 192578 119475  085567 189228 116866  084562 185876 114246  083519 182524 111613
082458 179168 108969  081356 175814 106312  080238 172454 103643  079081 169095 100961
077904 165731 098267  076692 162365 095559  075457 158996 092839  074192 155623 090105
072898 152246 087358  071580 148865 084597  070227 145481 081822  068856 142089 079033
""",
}

X = np.linspace(0, 1, 256)


def to_uint8(rgba_float):
    """rio-tiler's conversion: scale by 255 and truncate."""
    return (np.asarray(rgba_float) * 255).astype("uint8")


def custom_table(name):
    nums = [int(v) for v in CUSTOM_TABLES[name].split()]
    rows = [nums[i:i + 3] for i in range(0, len(nums), 3)]
    rows = rows[1:]  # rio-tiler 1.x skipped the first row
    assert len(rows) == 256, (name, len(rows))
    return np.array([r + [255] for r in rows], dtype="uint8")


def cmocean_tables(name, gmt_dir):
    """Return (plain, reversed, exact) for a cmocean colormap."""
    if name in CMOCEAN_RGB:
        rgb = np.array([int(v) for v in CMOCEAN_RGB[name].split()]).reshape(-1, 3) / 1e6
        assert rgb.shape == (256, 3), (name, rgb.shape)
        # The true value lies in [v, v + 1e-6): no multiple of 1/255 may fall
        # inside, or the truncated transcription could floor differently.
        scaled = rgb * 255
        gap = np.ceil(scaled) - scaled
        assert not np.any((gap > 0) & (gap < 2.6e-4)), (name, "ambiguous transcription")
        plain = LinearSegmentedColormap.from_list(name, rgb, N=256)
        rev = LinearSegmentedColormap.from_list(name + "_r", rgb[::-1, :], N=256)
        return to_uint8(plain(X)), to_uint8(rev(X)), True
    path = os.path.join(gmt_dir, name + ".cpt")
    if not os.path.exists(path):
        sys.exit(f"cmocean '{name}': no float table in the script and no {path} "
                 "(apt-get install gmt-common)")
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#") or parts[0] in ("B", "F", "N"):
                continue
            rows.append([int(c) for c in parts[1].split("/")] + [255])
    assert len(rows) == 256, (name, len(rows))
    plain = np.array(rows, dtype="uint8")
    return plain, plain[::-1].copy(), False


def build_tables(gmt_dir):
    lower = {n.lower(): n for n in matplotlib.colormaps}
    tables = {}
    approximate = []
    for name in BASE_NAMES:
        if name in CUSTOM_NAMES:
            tables[name] = custom_table(name)
        elif name in CMOCEAN_NAMES:
            plain, rev, exact = cmocean_tables(name, gmt_dir)
            tables[name], tables[name + "_r"] = plain, rev
            if not exact:
                approximate += [name, name + "_r"]
        else:
            mpl = lower[name]
            tables[name] = to_uint8(matplotlib.colormaps[mpl](X))
            tables[name + "_r"] = to_uint8(matplotlib.colormaps[mpl + "_r"](X))
    for t in tables.values():
        assert t.shape == (256, 4) and t.dtype == np.uint8
    return tables, sorted(approximate)


def write_c(path, tables, approximate):
    names = sorted(tables)
    out = []
    out.append("/*\n * GENERATED by scripts/gen_colormaps.py; do not edit.\n *\n"
               f" * rio-tiler's {len(names)} named colormaps, 256 RGBA entries each, in "
               "name order\n * (the order ts_colormap_named() binary-searches).\n")
    if approximate:
        text = ("Approximate (from 8-bit cmocean-gmt tables, may be one unit above "
                "rio-tiler's): " + ", ".join(approximate) + ".")
        out.append(" *\n" + "".join(" * " + line + "\n" for line in textwrap.wrap(text, 76, break_on_hyphens=False)))
    out.append(" */\n#include <stddef.h>\n#include <stdint.h>\n\n")
    out.append(f"const size_t ts__colormap_count = {len(names)};\n\n")
    out.append(f"const char *const ts__colormap_names[{len(names)}] = {{\n")
    for n in names:
        out.append(f'    "{n}",\n')
    out.append("};\n\n")
    out.append(f"const uint8_t ts__colormap_tables[{len(names)}][1024] = {{\n")
    for n in names:
        flat = tables[n].reshape(-1).tolist()
        out.append(f"    /* {n} */\n    {{\n")
        for i in range(0, 1024, 32):
            out.append("        " + ",".join(str(v) for v in flat[i:i + 32]) + ",\n")
        out.append("    },\n")
    out.append("};\n")
    with open(path, "w") as f:
        f.write("".join(out))


# --- color_formula reference: a small numpy re-implementation of rio-color ---
# (rio_color/operations.py, rio_color/colorspace.pyx) and of rio-tiler's
# ImageData.apply_color_formula, which converts to float 0..1 before each
# operation and back to uint8 (truncating) after it.

EPS = np.finfo(np.float64).eps


def rc_sigmoidal(arr, contrast, bias):
    alpha, beta = bias, contrast
    if alpha == 0:
        alpha = EPS
    if beta == 0:
        return arr
    with np.errstate(divide="ignore", invalid="ignore"):
        if beta > 0:
            num = 1 / (1 + np.exp(beta * (alpha - arr))) - 1 / (1 + np.exp(beta * alpha))
            den = 1 / (1 + np.exp(beta * (alpha - 1))) - 1 / (1 + np.exp(beta * alpha))
            return num / den
        return ((beta * alpha) - np.log((1 / ((arr / (1 + np.exp(beta * alpha - beta)))
                                              - (arr / (1 + np.exp(beta * alpha)))
                                              + (1 / (1 + np.exp(beta * alpha))))) - 1)) / beta


def rc_gamma(arr, g):
    return arr ** (1.0 / g)


_BINT = 4.0 / 29
_DELTA = 6.0 / 29
_T0 = _DELTA ** 3
_ALPHA = (_DELTA ** -2) / 3


def _saturate_pixel(r, g, b, mult):
    rl, gl, bl = math.pow(r, 2.2), math.pow(g, 2.2), math.pow(b, 2.2)
    x = ((rl * 0.4124) + (gl * 0.3576) + (bl * 0.1805)) / 0.95047
    y = ((rl * 0.2126) + (gl * 0.7152) + (bl * 0.0722))
    z = ((rl * 0.0193) + (gl * 0.1192) + (bl * 0.9505)) / 1.08883
    fx = math.pow(x, 0.3333333333333333) if x > _T0 else (_ALPHA * x) + _BINT
    fy = math.pow(y, 0.3333333333333333) if y > _T0 else (_ALPHA * y) + _BINT
    fz = math.pow(z, 0.3333333333333333) if z > _T0 else (_ALPHA * z) + _BINT
    L = (116 * fy) - 16
    a = 500 * (fx - fy)
    bb = 200 * (fy - fz)
    C = math.pow((a * a) + (bb * bb), 0.5)
    H = math.atan2(bb, a)
    C *= mult
    a = C * math.cos(H)
    bb = C * math.sin(H)
    tx = ((L + 16) / 116.0) + (a / 500.0)
    x = math.pow(tx, 3) if tx > _DELTA else 3 * _DELTA * _DELTA * (tx - _BINT)
    ty = (L + 16) / 116.0
    y = math.pow(ty, 3) if ty > _DELTA else 3 * _DELTA * _DELTA * (ty - _BINT)
    tz = ((L + 16) / 116.0) - (bb / 200.0)
    z = math.pow(tz, 3) if tz > _DELTA else 3 * _DELTA * _DELTA * (tz - _BINT)
    x *= 0.95047
    z *= 1.08883
    rlin = (x * 3.2406) + (y * -1.5372) + (z * -0.4986)
    glin = (x * -0.9689) + (y * 1.8758) + (z * 0.0415)
    blin = (x * 0.0557) + (y * -0.2040) + (z * 1.0570)
    out = []
    for v in (rlin, glin, blin):
        v = min(max(v, 0.0), 1.0)
        out.append(math.pow(v, 1 / 2.2))
    return out


def rc_saturation(arr, mult):
    out = np.empty_like(arr)
    for i in range(arr.shape[1]):
        out[:, i] = _saturate_pixel(arr[0, i], arr[1, i], arr[2, i], mult)
    return out


def rc_parse(ops_string):
    """rio-color's parse_operations, returning (name, bands, args) triples."""
    tokens = [x.strip() for x in ops_string.replace(",", "").split(" ")]
    ops, cur = [], []
    for t in tokens:
        if t.lower() in ("saturation", "sigmoidal", "gamma") and cur:
            ops.append(cur)
            cur = []
        cur.append(t.lower())
    if cur:
        ops.append(cur)
    result = []
    for parts in ops:
        name = parts[0]
        if name == "saturation":
            result.append((name, (1, 2, 3), [float(a) for a in parts[1:]]))
        else:
            bands = sorted({int(c) if c.isdigit() else {"r": 1, "g": 2, "b": 3}[c]
                            for c in parts[1]})
            result.append((name, tuple(bands), [float(a) for a in parts[2:]]))
    return result


def apply_formula(formula, pixels):
    """pixels: (n, 3) uint8 -> (n, 3) uint8, as rio-tiler would compute it."""
    out = pixels.T.copy()  # bands first, like rio-tiler
    for name, bands, args in rc_parse(formula):
        arr = out.astype(np.float64) / 255  # rio_color.utils.to_math_type
        new = arr.copy()
        if name == "saturation":
            new[0:3] = rc_saturation(arr[0:3], *args)
        else:
            fn = rc_gamma if name == "gamma" else rc_sigmoidal
            for b in bands:
                new[b - 1] = fn(arr[b - 1], *args)
        out = (new * 255).astype(np.uint8)  # rio_color.utils.scale_dtype
    return out.T


FORMULAS = [
    "gamma RGB 1.5",
    "gamma r 0.7",
    "gamma 13 2.2",
    "sigmoidal RGB 10 0.3",
    "sigmoidal rgb 35 0.13",
    "sigmoidal RGB 0 0.5",
    "sigmoidal g 5 0",
    "sigmoidal RGB -3 0.5",
    "saturation 1.2",
    "saturation 0.5",
    "saturation 0",
    "Gamma G 1.05, gamma b 1.1, sigmoidal rgb 12 0.35 Saturation 1.4",
    "gamma b 1.85, gamma rg 1.95, sigmoidal rgb 35 0.13, saturation 1.15",
]


def formula_pixels():
    rng = np.random.RandomState(20240501)
    grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    ramp = np.stack([np.arange(256), 255 - np.arange(256), (np.arange(256) * 7) % 256],
                    axis=1).astype(np.uint8)
    rand = rng.randint(0, 256, size=(256, 3)).astype(np.uint8)
    return np.concatenate([grey, ramp, rand])


def write_json(path, tables, approximate):
    spot_idx = [0, 1, 37, 100, 127, 128, 200, 254, 255]
    spot = {}
    for n in ["viridis", "viridis_r", "terrain", "terrain_r", "cfastie", "rplumbo",
              "schwarzwald", "tab10", "tab10_r", "twilight_r", "algae", "algae_r", "gray"]:
        spot[n] = {str(i): tables[n][i].tolist() for i in spot_idx}
    pix = formula_pixels()
    formulas = [{"formula": f, "output": apply_formula(f, pix).reshape(-1).tolist()}
                for f in FORMULAS]
    doc = {
        "generator": "scripts/gen_colormaps.py",
        "matplotlib": matplotlib.__version__,
        "numpy": np.__version__,
        "count": len(tables),
        "names": sorted(tables),
        "approximate": approximate,
        "spot": spot,
        "color_formula": {"input": pix.reshape(-1).tolist(), "cases": formulas},
    }
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-c", default=os.path.join(root, "src", "colormap_data.c"))
    ap.add_argument("--out-json",
                    default=os.path.join(root, "tests", "e2e", "data", "colormaps_expected.json"))
    ap.add_argument("--gmt-cmocean-dir", default=GMT_CMOCEAN_DIR,
                    help="fallback 8-bit cmocean CPTs for maps without floats in CMOCEAN_RGB")
    args = ap.parse_args()

    assert len(BASE_NAMES) == 107 and len(set(BASE_NAMES)) == 107
    tables, approximate = build_tables(args.gmt_cmocean_dir)
    assert len(tables) == 211, len(tables)
    write_c(args.out_c, tables, approximate)
    os.makedirs(os.path.dirname(args.out_json), exist_ok=True)
    write_json(args.out_json, tables, approximate)
    print(f"{len(tables)} colormaps -> {args.out_c}; expectations -> {args.out_json}")
    if approximate:
        print("approximate (8-bit cmocean-gmt source): " + " ".join(approximate))


if __name__ == "__main__":
    main()
