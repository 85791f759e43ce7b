"""rae_tf: regularized auto-encoder generative models in TensorFlow / Keras 3."""
import setuptools

setuptools.setup(
    name="rae_tf",
    version="0.1.0",
    description="Regularized auto-encoder generative models (VAE, WAE, RAE, MaskAAE, FlexAE) in TF/Keras",
    packages=setuptools.find_packages(include=["rae_tf", "rae_tf.*"]),
    package_data={"rae_tf": ["data_files/*.npz", "data_files/*.md"]},
    include_package_data=True,
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-probability>=0.25,<0.26",
        # TFP 0.25 refuses to import without tf-keras, even when only tfp.distributions is used.
        "tf-keras>=2.21,<2.22",
        "tensorflow-datasets>=4.9,<4.10",
        # tfds 4.9 imports it when downloading but does not declare it.
        "importlib_resources>=5.0",
        "absl-py>=2.0",
        "tensorboard>=2.21,<2.22",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "pillow>=10.0",
        "psutil>=5.9",
        "matplotlib>=3.8",
    ],
    extras_require={"test": ["pytest>=8.0", "pytest-xdist>=3.5"]},
)
