"""VGGish embeddings from the speech graph (``--embeddings-from vggish``): the 128-d
embedding FAD was defined on (Kilgour et al. 2019), one per 0.96 s patch.

The speech model is VGGish with a genre head on top, frozen into one graph: the VGGish
layers live in the scope ``model/vggish/`` and the head reads their last output, the
embedding layer. That node is found by structure, not by one spelling of its name: walking
back from the output ``model/Sigmoid`` through the nodes it reads, the first node in the
``model/vggish/`` scope. In Essentia's VGGish graphs it is ``model/vggish/embeddings`` (the
output Essentia's documentation gives for ``audioset-vggish-3.pb``); TF-slim's VGGish names
it ``vggish/embedding``, as the tests' graphs do (``model/vggish/embedding``). Its output must
be 128 values per patch, or the graph is refused.

``EmbeddingRunner`` splits the graph at that node into two ``GraphRunner``s, VGGish up to
the embedding and the head after it; run one after the other they compute what the whole
graph computes, op for op, so the speech scores (and every row) are those of a run without
embeddings.
"""

import torch

from stemeval.common.errors import UserError
from stemeval.speech.graph import GraphRunner, UnsupportedGraph

VGGISH_SCOPE = "model/vggish/"
EMBEDDING_SIZE = 128


def find_embedding_node(nodes, output_name):
    """The name of the VGGish node the head reads (see the module docstring), or None."""
    by_name = {node.name: node for node in nodes}
    seen, queue = set(), [output_name]
    while queue:
        name = queue.pop(0).split(":")[0]
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        if name.startswith(VGGISH_SCOPE):
            return name
        queue.extend(by_name[name].inputs)
    return None


class EmbeddingRunner(torch.nn.Module):
    """The speech graph as VGGish up to its embedding node, then the head: ``runner(patches)``
    gives the graph's output, ``runner.embed(patches)`` the output and the embeddings."""

    def __init__(self, trunk, head, node):
        super().__init__()
        self.trunk, self.head, self.node = trunk, head, node

    @classmethod
    def from_nodes(cls, nodes, input_name, output_name, source):
        """The runner of the speech graph ``nodes`` (``speech_graph.read_graph`` of the file
        ``source``, fed at ``input_name``, read at ``output_name``); a UserError when it has
        no 128-d VGGish embedding node."""
        node = find_embedding_node(nodes, output_name)
        if node is None:
            raise UserError(f"--embeddings-from vggish: the speech graph {source} has no node "
                            f"in the scope {VGGISH_SCOPE} on the way to {output_name}, so its "
                            f"VGGish embedding cannot be found")
        try:
            runner = cls(GraphRunner.from_nodes(nodes, input_name, node, source=source),
                         GraphRunner.from_nodes(nodes, node, output_name, source=source),
                         node)
        except UnsupportedGraph as error:
            raise UserError(f"--embeddings-from vggish runs the speech graph in PyTorch: "
                            f"{error}") from None
        with torch.inference_mode():
            width = runner.trunk(torch.zeros(1, 96, 64)).reshape(1, -1).shape[1]
        if width != EMBEDDING_SIZE:
            raise UserError(f"--embeddings-from vggish: the speech graph's node {node} gives "
                            f"{width} values per patch, not VGGish's {EMBEDDING_SIZE}")
        return runner

    @property
    def device(self):
        return self.trunk.device

    def forward(self, patches):
        return self.head(self.trunk(patches))

    def embed(self, patches):
        """``(outputs, embeddings)`` of ``patches`` [n, 96, 64]."""
        embeddings = self.trunk(patches)
        return self.head(embeddings), embeddings

